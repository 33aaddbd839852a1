"""What the backends share: the stop-string rule and the model-spec dispatch."""

import pytest

from ftlib import backends
from ftlib.backends import api


@pytest.mark.parametrize("text,stop,expected", [
    ("a<END>b", ["<END>"], "a"), ("abc", [], "abc"), ("abc", [""], "abc"), ("abc", ["zz"], "abc"),
    ("x\n\ny;z", [";", "\n\n"], "x"),  # the earliest stop wins, not the first listed
    ("x<END_A>y</SQL>", ["</SQL>", "<END_A>"], "x"), ("<END>", ["<END>"], "")])
def test_cut_at_stop(text, stop, expected):
    assert backends.cut_at_stop(text, stop) == expected


def test_from_spec_dispatches_api_specs_and_passes_generators_through(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    gen = backends.from_spec("api:some-model")
    assert isinstance(gen, api.ChatGenerator) and gen.config.model == "some-model"
    assert backends.from_spec(gen) is gen
