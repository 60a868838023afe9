"""The AES-256-GCM payload codec and its keyring from the environment (no server needed)."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes

from app.temporal import client as client_module
from app.temporal import codec as codec_module
from app.temporal.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    EncryptionConfigError,
    KeylessCodec,
    Keyring,
    PayloadDecryptionError,
    new_key_line,
)
from app.temporal.codec_server import (
    MAX_BODY_BYTES,
    CodecServerConfigError,
    create_app,
    host_name,
    tokens_from_environment,
)
from app.temporal.converter import PayloadConverter
from app.temporal.errors import LiaraError
from app.temporal.models import CrisisRequest, MissionPhase

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(32, 64))


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def codec(*keys: tuple[str, bytes], current: str | None = None) -> EncryptionCodec:
    return EncryptionCodec(Keyring(keys=dict(keys), current_id=current or keys[0][0]))


def request() -> CrisisRequest:
    return CrisisRequest(
        crisis_id="crisis-secret-1",
        target_member="target-secret",
        missions=[
            MissionPhase(
                phase_id="phase-hidden-1", agent_id="agent-001", action="deploy", target="target-secret", priority=1
            )
        ],
        initiated_by="user-123",
    )


def plain_payload() -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([request()])[0]


async def test_round_trip_gives_back_the_same_payload_and_value() -> None:
    encryption = codec(("k1", KEY_1))
    original = plain_payload()

    [encrypted] = await encryption.encode([original])
    [decrypted] = await encryption.decode([encrypted])

    assert decrypted == original
    assert pydantic_data_converter.payload_converter.from_payloads([decrypted], [CrisisRequest]) == [request()]


async def test_encrypted_payload_is_labelled_and_holds_no_plaintext() -> None:
    [encrypted] = await codec(("k1", KEY_1)).encode([plain_payload()])

    assert encrypted.metadata["encoding"] == ENCODING == b"binary/encrypted"
    assert encrypted.metadata[KEY_ID_METADATA] == b"k1"
    assert set(encrypted.metadata) == {"encoding", KEY_ID_METADATA}
    for secret in (b"target-secret", b"phase-hidden-1", b"json/plain", b"crisis-secret-1"):
        assert secret not in encrypted.data
    # 12-byte nonce + ciphertext of the serialized payload + 16-byte tag
    assert len(encrypted.data) == 12 + len(plain_payload().SerializeToString()) + 16


async def test_the_same_payload_encrypts_differently_every_time() -> None:
    encryption = codec(("k1", KEY_1))

    first, second = await encryption.encode([plain_payload(), plain_payload()])
    [third] = await encryption.encode([plain_payload()])

    assert len({first.data, second.data, third.data}) == 3
    assert len({first.data[:12], second.data[:12], third.data[:12]}) == 3  # fresh nonces


@pytest.mark.parametrize("position", [0, 5, 12, 40, -1], ids=["nonce", "nonce-mid", "ciphertext", "mid", "tag"])
async def test_a_tampered_payload_is_refused(position: int) -> None:
    encryption = codec(("k1", KEY_1))
    [encrypted] = await encryption.encode([plain_payload()])
    data = bytearray(encrypted.data)
    data[position] ^= 0x01
    tampered = Payload(metadata=dict(encrypted.metadata), data=bytes(data))

    with pytest.raises(PayloadDecryptionError, match="'k1' fails authentication: it was altered"):
        await encryption.decode([tampered])


async def test_a_payload_relabelled_with_another_key_id_is_refused() -> None:
    encryption = codec(("k1", KEY_1), ("k2", KEY_2))
    [encrypted] = await encryption.encode([plain_payload()])
    relabelled = Payload(metadata={**encrypted.metadata, KEY_ID_METADATA: b"k2"}, data=encrypted.data)

    with pytest.raises(PayloadDecryptionError, match="'k2' fails authentication"):
        await encryption.decode([relabelled])


async def test_rotation_old_payloads_decode_new_ones_use_the_current_key() -> None:
    [old] = await codec(("k1", KEY_1)).encode([plain_payload()])
    rotated = codec(("k2", KEY_2), ("k1", KEY_1))  # k2 is current now; k1 kept to read old payloads

    [new] = await rotated.encode([plain_payload()])
    decoded = await rotated.decode([old, new])

    assert old.metadata[KEY_ID_METADATA] == b"k1"
    assert new.metadata[KEY_ID_METADATA] == b"k2"
    assert decoded == [plain_payload(), plain_payload()]
    # k1 removed: its payloads fail with an error naming it
    with pytest.raises(PayloadDecryptionError) as raised:
        await codec(("k2", KEY_2)).decode([old])
    message = str(raised.value)
    assert "key id 'k1', which is not in the keyring (k2)" in message
    assert b64(KEY_1) not in message and b64(KEY_2) not in message
    assert isinstance(raised.value, LiaraError)


async def test_payloads_that_are_not_encrypted_pass_through() -> None:
    encryption = codec(("k1", KEY_1))
    plain = plain_payload()
    binary_null = pydantic_data_converter.payload_converter.to_payloads([None])[0]

    assert await encryption.decode([plain, binary_null]) == [plain, binary_null]


async def test_without_keys_nothing_is_encrypted_and_encrypted_payloads_say_what_to_set() -> None:
    [encrypted] = await codec(("k1", KEY_1)).encode([plain_payload()])
    keyless = KeylessCodec()

    assert await keyless.encode([plain_payload()]) == [plain_payload()]
    assert await keyless.decode([plain_payload()]) == [plain_payload()]
    with pytest.raises(PayloadDecryptionError) as raised:
        await keyless.decode([encrypted])
    assert str(raised.value) == (
        "Payload is encrypted (key id 'k1') but no encryption keys are configured: "
        "set LIARA_ENCRYPTION_KEYS or LIARA_ENCRYPTION_KEY_FILE to read it."
    )


def test_keys_from_the_environment_first_is_current_unless_named() -> None:
    keys = f"k1:{b64(KEY_1)}, k2:{b64(KEY_2)},"  # spaces and a trailing comma are fine

    first = Keyring.from_environment({"LIARA_ENCRYPTION_KEYS": keys})
    named = Keyring.from_environment({"LIARA_ENCRYPTION_KEYS": keys, "LIARA_ENCRYPTION_KEY_ID": "k2"})

    assert first is not None and named is not None
    assert first.keys == {"k1": KEY_1, "k2": KEY_2}
    assert (first.current_id, named.current_id) == ("k1", "k2")
    assert b64(KEY_1) not in repr(first)  # keys never show in a repr (or a log of it)


def test_keys_from_a_file_one_per_line_with_comments(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"# rotated 2026-01\nk2:{b64(KEY_2)}\n\n  k1:{b64(KEY_1)}  \n")

    keyring = Keyring.from_environment({"LIARA_ENCRYPTION_KEY_FILE": str(key_file)})

    assert keyring is not None
    assert keyring.keys == {"k2": KEY_2, "k1": KEY_1}
    assert keyring.current_id == "k2"


def test_no_keys_means_no_encryption() -> None:
    assert Keyring.from_environment({}) is None
    assert Keyring.from_environment({"LIARA_ENCRYPTION_KEYS": "  "}) is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LIARA_ENCRYPTION_KEYS": f"k1:{b64(KEY_1[:16])}"}, "Key 'k1' in LIARA_ENCRYPTION_KEYS is 16 bytes long"),
        ({"LIARA_ENCRYPTION_KEYS": "k1:not*base64!"}, "Key 'k1' in LIARA_ENCRYPTION_KEYS is not valid base64"),
        (
            {"LIARA_ENCRYPTION_KEYS": f"k1:{b64(KEY_1)},k1:{b64(KEY_2)}"},
            "Key id 'k1' appears twice in LIARA_ENCRYPTION_KEYS",
        ),
        (
            {"LIARA_ENCRYPTION_KEYS": f"k1:{b64(KEY_1)}", "LIARA_ENCRYPTION_KEY_ID": "k9"},
            "The current encryption key id 'k9' is not among the configured keys (k1)",
        ),
        ({"LIARA_ENCRYPTION_KEYS": b64(KEY_1)}, "Entry 1 of LIARA_ENCRYPTION_KEYS is not `id:<base64 key>`"),
        ({"LIARA_ENCRYPTION_KEYS": f"bad id:{b64(KEY_1)}"}, "Key id 'bad id' in LIARA_ENCRYPTION_KEYS is not"),
        ({"LIARA_ENCRYPTION_KEY_ID": "k1"}, "LIARA_ENCRYPTION_KEY_ID is set but no keys are configured"),
        (
            {"LIARA_ENCRYPTION_KEYS": f"k1:{b64(KEY_1)}", "LIARA_ENCRYPTION_KEY_FILE": "/keys"},
            "Both LIARA_ENCRYPTION_KEYS and LIARA_ENCRYPTION_KEY_FILE are set",
        ),
        ({"LIARA_ENCRYPTION_KEY_FILE": "/nonexistent/liara-keys"}, "Cannot read the encryption key file"),
    ],
    ids=["short", "bad-base64", "duplicate", "unknown-current", "no-id", "bad-id", "id-only", "both", "no-file"],
)
def test_bad_key_configurations_are_one_sentence_errors(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(EncryptionConfigError) as raised:
        Keyring.from_environment(environ)

    message = str(raised.value)
    assert message.startswith(expected), message
    assert isinstance(raised.value, LiaraError)
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0, message
    for value in environ.values():  # the key material itself is never echoed
        for part in value.split(","):
            secret = part.partition(":")[2]
            if len(secret) > 8:
                assert secret not in message


def test_an_empty_key_file_is_an_error(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# nothing yet\n")

    with pytest.raises(EncryptionConfigError, match=r"^No keys found in the encryption key file .*: create one"):
        Keyring.from_environment({"LIARA_ENCRYPTION_KEY_FILE": str(key_file)})


def test_new_key_lines_are_random_valid_keys() -> None:
    first, second = new_key_line("k-2026.01"), new_key_line()
    keyring = Keyring.from_environment({"LIARA_ENCRYPTION_KEYS": f"{first},{second}"})

    assert keyring is not None
    assert first.startswith("k-2026.01:")
    assert second.startswith("key-")
    assert len(set(keyring.keys.values())) == 2
    with pytest.raises(EncryptionConfigError):
        new_key_line("no spaces")


def test_connect_encrypts_payloads_and_failure_messages_only_when_keys_are_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def converter_for(environ: dict[str, str]):
        for name in ("LIARA_ENCRYPTION_KEYS", "LIARA_ENCRYPTION_KEY_FILE", "LIARA_ENCRYPTION_KEY_ID"):
            monkeypatch.delenv(name, raising=False)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        codec_module.configured_codec.cache_clear()
        client_module.data_converter.cache_clear()
        return client_module.data_converter()

    try:
        keyless = converter_for({})
        assert isinstance(keyless.payload_codec, KeylessCodec)
        assert keyless.payload_converter_class is PayloadConverter  # pydantic's, adapters shared
        assert type(keyless.failure_converter) is type(pydantic_data_converter.failure_converter)
        encrypting = converter_for({"LIARA_ENCRYPTION_KEYS": f"k1:{b64(KEY_1)}"})
        assert isinstance(encrypting.payload_codec, EncryptionCodec)
        assert encrypting.payload_codec.current_id == "k1"
        assert encrypting.payload_converter_class is PayloadConverter
        assert isinstance(encrypting.failure_converter, DefaultFailureConverterWithEncodedAttributes)
        # Read once per process: a later change of the environment is not seen.
        monkeypatch.setenv("LIARA_ENCRYPTION_KEYS", f"k2:{b64(KEY_2)}")
        assert client_module.data_converter() is encrypting
    finally:
        monkeypatch.undo()
        codec_module.configured_codec.cache_clear()
        client_module.data_converter.cache_clear()


# --- the codec server's app, in process -----------------------------------------------------


CODEC_TOKEN = "test-codec-token-0123456789"


def codec_app_client(encryption: EncryptionCodec) -> httpx.AsyncClient:
    app = create_app(encryption, ["http://localhost:8233"], tokens=[CODEC_TOKEN])
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://localhost:8081",
        headers={"Authorization": f"Bearer {CODEC_TOKEN}"},
    )


def as_json(*payloads: Payload) -> dict[str, list[dict[str, object]]]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


async def test_codec_server_decodes_encrypted_and_passes_plain_payloads_through() -> None:
    encryption = codec(("k1", KEY_1))
    [encrypted] = await encryption.encode([plain_payload()])

    async with codec_app_client(encryption) as http:
        answer = await http.post("/decode", json=as_json(encrypted, plain_payload()), headers={"X-Namespace": "ns-1"})

    assert answer.status_code == 200, answer.text
    decoded = Payloads()
    json_format.Parse(answer.content, decoded)
    assert list(decoded.payloads) == [plain_payload(), plain_payload()]


async def test_codec_server_refuses_unknown_keys_and_bad_bodies_with_one_sentence() -> None:
    [foreign] = await codec(("k9", KEY_2)).encode([plain_payload()])

    async with codec_app_client(codec(("k1", KEY_1))) as http:
        unknown = await http.post("/decode", json=as_json(foreign))
        not_json = await http.post("/decode", content=b"payloads please")
        too_large = await http.post("/encode", content=b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}")
        wrong_method = await http.get("/decode")

    assert unknown.status_code == 400
    assert "key id 'k9', which is not in the keyring (k1)" in unknown.json()["error"]
    assert not_json.status_code == 400
    assert not_json.json()["error"].startswith('The body is not {"payloads": [...]} in proto-JSON form')
    assert too_large.status_code == 413
    assert wrong_method.status_code == 405


# --- the codec server's tokens and host names ---------------------------------------------------


def test_codec_server_tokens_from_the_environment_or_a_file(tmp_path: Path) -> None:
    first, second = "a" * 16, "Zm9vYmFyLWJhei0xMjM0NTY3OA=="
    assert tokens_from_environment({"LIARA_CODEC_SERVER_TOKENS": f" {first}, {second},"}) == (first, second)
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# the Web UI proxy\n{second}\n\n  {first}  \n")
    assert tokens_from_environment({"LIARA_CODEC_SERVER_TOKEN_FILE": str(token_file)}) == (second, first)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "No codec server token is configured: set LIARA_CODEC_SERVER_TOKENS or LIARA_CODEC_SERVER_TOKEN_FILE"),
        ({"LIARA_CODEC_SERVER_TOKENS": " , "}, "No codec server token is configured"),
        ({"LIARA_CODEC_SERVER_TOKENS": "short-secret"}, "Token 1 of LIARA_CODEC_SERVER_TOKENS is not at least 16"),
        (
            {"LIARA_CODEC_SERVER_TOKENS": "a" * 16 + ",has spaces in it, really"},
            "Token 2 of LIARA_CODEC_SERVER_TOKENS is not at least 16",
        ),
        (
            {"LIARA_CODEC_SERVER_TOKENS": "a" * 16, "LIARA_CODEC_SERVER_TOKEN_FILE": "/tokens"},
            "Both LIARA_CODEC_SERVER_TOKENS and LIARA_CODEC_SERVER_TOKEN_FILE are set",
        ),
        ({"LIARA_CODEC_SERVER_TOKEN_FILE": "/nonexistent/liara-tokens"}, "Cannot read the codec server token file"),
    ],
    ids=["unset", "empty", "short", "spaces", "both", "no-file"],
)
def test_bad_codec_server_tokens_are_one_sentence_errors(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(CodecServerConfigError) as raised:
        tokens_from_environment(environ)
    message = str(raised.value)
    assert message.startswith(expected), message
    assert isinstance(raised.value, LiaraError)
    assert "\n" not in message and message.endswith("."), message
    assert "short-secret" not in message and "really" not in message  # tokens are never echoed


def test_an_empty_token_file_is_an_error(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("# nothing yet\n")
    with pytest.raises(CodecServerConfigError, match=r"^No tokens found in the codec server token file .*: make"):
        tokens_from_environment({"LIARA_CODEC_SERVER_TOKEN_FILE": str(token_file)})


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("localhost:8081", "localhost"),
        ("LocalHost.", "localhost"),
        ("127.0.0.1:8081", "127.0.0.1"),
        ("[::1]:8081", "[::1]"),
        ("::1", "[::1]"),
        ("codec.example.org", "codec.example.org"),
        ("localhost:abc", "localhost:abc"),
        ("", ""),
    ],
)
def test_host_names_ignore_the_port_and_case(host: str, name: str) -> None:
    assert host_name(host) == name


def test_the_codec_server_app_needs_a_token() -> None:
    with pytest.raises(ValueError, match="at least one token"):
        create_app(codec(("k1", KEY_1)), tokens=[])
