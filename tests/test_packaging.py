"""What a user of the installed package sees: its public namespace and its metadata.

The metadata tests read the installed distribution (an editable install, or
the wheel under test in cibuildwheel), so they check what was really built.
"""

from __future__ import annotations

import builtins
import importlib.metadata
from typing import Any

import hardy
import hardy.errors


def test_star_import_shadows_no_builtin() -> None:
    assert sorted(set(hardy.__all__) & set(dir(builtins))) == []
    namespace: dict[str, Any] = {}
    exec("from hardy import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == sorted(hardy.__all__)
    assert sorted(set(namespace) & set(dir(builtins)) - {"__builtins__"}) == []


def test_star_import_leaves_except_timeout_error_catching_socket_timeouts() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from hardy import *\n"
        "import socket\n"
        "try:\n"
        "    raise socket.timeout('timed out')\n"
        "except TimeoutError as exc:\n"
        "    caught = exc\n",
        namespace,
    )
    assert type(namespace["caught"]) is builtins.TimeoutError


def test_hardy_timeout_error_is_still_public_and_a_builtin_timeout_error() -> None:
    assert hardy.TimeoutError is hardy.errors.TimeoutError
    assert issubclass(hardy.TimeoutError, builtins.TimeoutError)
    assert "TimeoutError" not in hardy.__all__


def metadata() -> Any:
    return importlib.metadata.metadata("hardy")


def test_license_is_mit_and_its_file_is_shipped() -> None:
    meta = metadata()
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    files = importlib.metadata.files("hardy") or []
    licenses = [file for file in files if file.name == "LICENSE" and ".dist-info" in str(file)]
    assert len(licenses) == 1, files
    text = licenses[0].read_text()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text


def test_project_urls_name_documentation_changelog_and_issues() -> None:
    urls = dict(entry.split(", ", 1) for entry in metadata().get_all("Project-URL") or [])
    base = "https://github.com/hardy-resilience/hardy"
    assert set(urls) >= {"Documentation", "Changelog", "Issues", "Source"}
    assert all(url.startswith(base) for url in urls.values()), urls
    assert urls["Issues"] == f"{base}/issues"
    assert urls["Changelog"].endswith("/CHANGELOG.md")


def test_classifiers_name_the_platforms_the_wheels_cover() -> None:
    classifiers = metadata().get_all("Classifier") or []
    assert "Operating System :: OS Independent" not in classifiers
    for platform in ("POSIX :: Linux", "MacOS", "Microsoft :: Windows"):
        assert f"Operating System :: {platform}" in classifiers
    assert "License :: OSI Approved :: MIT License" not in classifiers  # License-Expression says it (PEP 639)


def test_extras_are_runtime_or_test_only() -> None:
    # Development-only sets (lint, bench, ...) are [dependency-groups], never extras;
    # the extras are the optional integrations and the test set.
    assert sorted(metadata().get_all("Provides-Extra") or []) == ["otel", "prometheus", "redis", "test"]
