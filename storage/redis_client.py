"""Redis clients for the bus and the job queue."""

from redis.asyncio import BlockingConnectionPool, Redis

# Hundreds of requests may publish or enqueue at once. redis-py's default pool refuses the
# 101st concurrent command ("Too many connections"); this one makes it wait for a free
# connection instead, and keeps the number of connections a server sees bounded.
MAX_CONNECTIONS = 64
WAIT_S = 10.0


def redis_client(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=WAIT_S)
    return Redis(connection_pool=pool)
