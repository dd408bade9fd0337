"""The three OpenAPI validators integrators use, run on one document: errors counted, output kept.

- ``openapi-spec-validator`` (Python, pinned in pyproject.toml),
- ``@apidevtools/swagger-parser`` (npm, pinned in package.json): dereferences and validates,
- ``@redocly/cli lint`` with its ``recommended`` rules (npm, pinned): errors only count; warnings are
  printed with the output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"
SWAGGER_PARSER = """
const SwaggerParser = require("@apidevtools/swagger-parser");
SwaggerParser.validate(process.argv[1]).then(
  () => { console.log("valid"); },
  (error) => { console.log(String(error.message)); process.exitCode = 1; });
"""


@dataclass(frozen=True)
class LintResult:
    tool: str
    errors: int
    output: str


def _openapi_spec_validator(path: Path) -> LintResult:
    from openapi_spec_validator import validate
    from openapi_spec_validator.readers import read_from_filename

    errors, output = 0, "valid"
    try:
        validate(read_from_filename(str(path))[0])
    except Exception as exc:
        errors, output = 1, str(exc)[:4000]
    return LintResult("openapi-spec-validator", errors, output)


def _swagger_parser(path: Path) -> LintResult:
    run = subprocess.run(
        ["node", "-e", SWAGGER_PARSER, str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    output = (run.stdout + run.stderr).strip()
    return LintResult(
        "@apidevtools/swagger-parser", 0 if run.returncode == 0 else max(1, output.count("\n") + 1), output
    )


def _redocly(path: Path) -> LintResult:
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1"}
    run = subprocess.run(
        [str(BIN / "redocly"), "lint", "--extends=recommended", "--format=stylish", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    output = "\n".join(
        line for line in (run.stdout + run.stderr).splitlines() if line.strip() and not any(c in line for c in "║╔╚")
    )
    counted = re.search(r"(\d+) errors?", output)
    errors = int(counted[1]) if counted else (0 if run.returncode == 0 else 1)
    return LintResult("@redocly/cli lint (recommended)", errors, output[-6000:])


def lint(document: dict[str, Any]) -> list[LintResult]:
    with tempfile.TemporaryDirectory(prefix="medledger-openapi-") as folder:
        path = Path(folder) / "openapi.json"
        path.write_text(json.dumps(document, indent=1))
        return [_openapi_spec_validator(path), _swagger_parser(path), _redocly(path)]
