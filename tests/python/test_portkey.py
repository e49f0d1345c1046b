"""The Portkey keyword arguments: x-portkey-* headers on every request (the server's
request log redacts keys: the test checks the header names and the values that are not
keys), winning over the PORTKEY_* variables; keys never in repr() or an error."""

import pytest

import uploadfs


def headers_of(log):
    return [r["headers"] for r in log]


def test_portkey_keyword_arguments_send_the_headers(server):
    srv = server()
    c = uploadfs.Uploads(base_url=srv.base, portkey_api_key="pk-test-secret",
                         virtual_key="vk-test-secret", provider="openai",
                         config={"retry": {"attempts": 2}}, custom_host=srv.base)
    assert "secret" not in repr(c) and c.base_url == srv.base
    up = c.upload_file_chunked(file=b"portkey", filename="p.txt", mime_type="text/plain",
                               purpose="batch")
    assert up.status == "completed"
    with pytest.raises(uploadfs.NotFoundError) as e:
        c.files.retrieve("file-nope")
    assert "secret" not in str(e.value) and "secret" not in repr(e.value)
    c.close()
    log = srv.requests()
    assert len(log) == 4  # create, part, complete, retrieve
    for h in headers_of(log):
        assert h["x-portkey-api-key"] == "[REDACTED]"
        assert h["x-portkey-virtual-key"] == "[REDACTED]"
        assert h["x-portkey-provider"] == "openai"
        assert h["x-portkey-config"] == '{"retry":{"attempts":2}}'
        assert h["x-portkey-custom-host"] == srv.base
        # a Portkey key and no OpenAI key: no Authorization
        assert "authorization" not in h
    assert "secret" not in srv.log.read_text()


def test_keyword_arguments_win_over_the_environment(server, monkeypatch):
    srv = server()
    monkeypatch.setenv("PORTKEY_API_KEY", "pk-env-secret")
    monkeypatch.setenv("PORTKEY_PROVIDER", "env-provider")
    monkeypatch.setenv("PORTKEY_CONFIG", "env-config")
    monkeypatch.setenv("PORTKEY_VIRTUAL_KEY", "vk-env-secret")
    # the provider given, the config taken away (""), the keys from the environment
    with uploadfs.Uploads(base_url=srv.base, provider="azure-openai", config="") as c:
        c.files.list()
    # no Portkey key at all, an OpenAI key instead
    with uploadfs.Uploads(api_key="sk-openai-secret", base_url=srv.base,
                          portkey_api_key="", virtual_key="", provider="", config="") as c:
        c.files.list()
    first, second = headers_of(srv.requests())
    assert first["x-portkey-provider"] == "azure-openai"
    assert first["x-portkey-api-key"] == "[REDACTED]"
    assert first["x-portkey-virtual-key"] == "[REDACTED]"
    assert "x-portkey-config" not in first and "authorization" not in first
    assert not [k for k in second if k.startswith("x-portkey-")]
    assert second["authorization"] == "[REDACTED]"


def test_portkey_alone_defaults_to_portkeys_base(monkeypatch):
    c = uploadfs.Uploads(portkey_api_key="pk-secret", virtual_key="vk-secret")
    assert c.base_url == "https://api.portkey.ai/v1"
    assert repr(c) == "Uploads(base_url='https://api.portkey.ai/v1')"
    c.close()
    # an OpenAI key keeps OpenAI's base
    with uploadfs.Uploads(api_key="sk-secret") as c:
        assert c.base_url == "https://api.openai.com/v1"
