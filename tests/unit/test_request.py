import pytest

from domain.errors import InvalidRequest
from domain.request import parse_create_request


def _error(body) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_create_request(body)
    return info.value


def test_model_is_required():
    error = _error({"input": "hi"})
    assert (error.param, error.code) == ("model", "missing_required_parameter")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "temperature": "hot"}, "temperature"),
        ({"model": "m", "store": "yes"}, "store"),
        ({"model": "m", "max_output_tokens": 1.5}, "max_output_tokens"),
        ({"model": 3}, "model"),
        ({"model": "m", "metadata": {"k": 1}}, "metadata.k"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "tools": [1]}, "tools[0]"),
    ],
)
def test_wrong_types_name_the_param(body, param):
    error = _error(body)
    assert error.param == param
    assert error.code == "invalid_type"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "temperature": 3}, "temperature"),
        ({"model": "m", "top_p": -1}, "top_p"),
        ({"model": "m", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
        ({"model": "m", "metadata": {"k" * 65: "v"}}, "metadata"),
        ({"model": "m", "metadata": {"k": "v" * 513}}, "metadata"),
        ({"model": "m", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ],
)
def test_out_of_range_values_are_rejected(body, param):
    error = _error(body)
    assert error.param == param
    assert error.code == "invalid_value"


def test_body_must_be_an_object():
    assert _error([1, 2]).code == "invalid_json"


def test_unknown_fields_and_tool_types_are_ignored():
    request = parse_create_request(
        {
            "model": "m",
            "client_metadata": {"x": 1},
            "tools": [{"type": "web_search"}, {"type": "namespace", "name": "n"}],
            "metadata": {"k" * 64: "v" * 512},
        }
    )
    assert request.model == "m"
    assert len(request.tools or []) == 2
