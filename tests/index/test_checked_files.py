import hashlib
from pathlib import Path

import pytest

from embedforge.errors import UserError
from embedforge.index.checked_files import check_sha256, read_json


def test_a_file_with_its_recorded_hash_passes_and_any_other_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    path.write_text("[1, 2]")
    recorded = {"ids.json": hashlib.sha256(b"[1, 2]").hexdigest()}
    check_sha256(path, recorded, "do this")
    path.write_text("[2, 1]")
    with pytest.raises(
        UserError, match=r"ids\.json: its sha256 is .* records [0-9a-f]{12} .*do this"
    ):
        check_sha256(path, recorded, "do this")
    with pytest.raises(UserError, match="records no sha256"):
        check_sha256(path, {}, "do this")
    with pytest.raises(UserError, match=r"other\.json is missing"):
        check_sha256(tmp_path / "other.json", recorded, "do this")


def test_read_json_names_a_missing_or_garbled_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"meta\.json is missing"):
        read_json(tmp_path / "meta.json")
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(UserError, match=r"meta\.json is not valid JSON"):
        read_json(tmp_path / "meta.json")
    (tmp_path / "meta.json").write_text('{"a": 1}')
    assert read_json(tmp_path / "meta.json") == {"a": 1}
