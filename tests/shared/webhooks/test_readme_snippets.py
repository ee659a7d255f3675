"""The verification snippets of the README's Webhooks section accept what the sender signs and
refuse a tampered, re-signed or stale delivery: the Python one here, the TypeScript one in Node
(its types stripped by the JS client's pinned TypeScript, which `make test` installs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.webhooks.signing import message_id, sign, signing_key

REPO_ROOT = Path(__file__).resolve().parents[3]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = '{"id":"01JC4Y5M3W0000000000000000","status":"completed","result":{"caption":"é"}}'
# The JS client's pinned TypeScript (make test installs it) strips the snippet's types.
TYPESCRIPT = REPO_ROOT / "clients" / "js" / "node_modules" / "typescript"

Verify = Callable[[str, dict[str, str], str], bool]


def readme_snippet(marker: str, language: str) -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\n```{language}\n(.*?)```", readme, re.DOTALL)
    assert found, f"README.md has no ```{language} block after <!-- {marker} -->"
    return found[1]


def python_verify() -> Verify:
    namespace: dict[str, Any] = {}
    exec(readme_snippet("webhook-verify-python", "python"), namespace)

    def verify(secret: str, headers: dict[str, str], body: str) -> bool:
        return bool(namespace["verify_webhook"](secret, headers, body.encode()))

    return verify


def node_verify(tmp_path: Path) -> Verify:
    assert shutil.which("node"), "node is needed (Node 20+; make test runs the JS client on it)"
    assert TYPESCRIPT.exists(), (
        f"{TYPESCRIPT} is missing: run make test (npm ci --prefix clients/js)"
    )
    source = tmp_path / "verify.ts"
    source.write_text(readme_snippet("webhook-verify-typescript", "typescript"), encoding="utf-8")
    module = tmp_path / "verify.mjs"
    strip_types = (
        "const ts = require(process.argv[1]); const fs = require('fs');"
        "const out = ts.transpileModule(fs.readFileSync(process.argv[2], 'utf8'), {"
        "compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022}});"
        "fs.writeFileSync(process.argv[3], out.outputText);"
    )
    subprocess.run(
        ["node", "-e", strip_types, str(TYPESCRIPT), str(source), str(module)],
        check=True,
        timeout=60,
    )
    runner = tmp_path / "run.mjs"
    runner.write_text(
        f'import {{ verifyWebhook }} from "{module.as_uri()}";\n'
        "const c = JSON.parse(process.argv[2]);\n"
        "console.log(await verifyWebhook(c.secret, new Headers(c.headers), c.body));\n",
        encoding="utf-8",
    )

    def verify(secret: str, headers: dict[str, str], body: str) -> bool:
        case = json.dumps({"secret": secret, "headers": headers, "body": body})
        ran = subprocess.run(
            ["node", runner, case], check=True, capture_output=True, text=True, timeout=60
        )
        return ran.stdout.strip() == "true"

    return verify


@pytest.fixture(params=["python", "typescript"])
def verify(request: pytest.FixtureRequest, tmp_path: Path) -> Verify:
    return python_verify() if request.param == "python" else node_verify(tmp_path)


def signed_headers(body: str, secret: str = SECRET, age_s: int = 0) -> dict[str, str]:
    msg_id = message_id("01JC4Y5M3W0000000000000000", "completed")
    timestamp_s = int(time.time()) - age_s
    return sign(signing_key(secret), msg_id, timestamp_s, body.encode()).as_dict()


def test_the_snippet_accepts_a_delivery_the_sender_signed(verify: Verify) -> None:
    assert verify(SECRET, signed_headers(BODY), BODY)


def test_the_snippet_accepts_the_right_signature_among_several(verify: Verify) -> None:
    headers = signed_headers(BODY)
    stale = signed_headers(BODY, secret="whsec_" + "b3RoZXIta2V5LW9mLTMyLWJ5dGVzLWxvbmctZW5vdWdo")
    headers["webhook-signature"] = f"{stale['webhook-signature']} {headers['webhook-signature']}"

    assert verify(SECRET, headers, BODY)


@pytest.mark.parametrize(
    "change", ["tampered body", "other secret", "ten minutes old", "no signature", "not base64"]
)
def test_the_snippet_refuses(verify: Verify, change: str) -> None:
    headers, body = signed_headers(BODY), BODY
    if change == "tampered body":
        body = BODY.replace("completed", "failed")
    elif change == "other secret":
        headers = signed_headers(BODY, secret="a plain secret of 24+ characters")
    elif change == "ten minutes old":
        headers = signed_headers(BODY, age_s=600)
    elif change == "no signature":
        del headers["webhook-signature"]
    else:
        headers["webhook-signature"] = "v1,***"

    assert not verify(SECRET, headers, body)


def test_a_plain_text_secret_verifies_as_its_bytes(verify: Verify) -> None:
    secret = "a plain secret of 24+ characters"

    assert verify(secret, signed_headers(BODY, secret=secret), BODY)
