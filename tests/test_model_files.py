"""A model file is data: a member that claims more than it holds is refused, never allocated."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from knowledge.errors import CulpritError
from knowledge.model_files import read_model_file


class ModelRefused(CulpritError):
    pass


def test_an_array_whose_header_claims_petabytes_is_refused_as_damaged(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**17,)})
    path = tmp_path / "ranker.model"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps({"format": "ranker", "format_version": 1}))
        archive.writestr("weights.npy", header.getvalue() + b"\0" * 64)  # 64 bytes of the 800 PB it declares
    model_file = read_model_file(path, "ranker", 1, ModelRefused, "retrain with `culprit train`")

    with pytest.raises(ModelRefused, match=r"has a damaged weights.npy \(MemoryError: .*retrain with `culprit train`"):
        model_file.array("weights")


@pytest.mark.parametrize(("kind", "named"), [("fifo", "a FIFO"), ("directory", "a directory")])
def test_a_model_path_that_is_no_regular_file_is_refused_without_waiting_on_it(tmp_path: Path, kind: str, named: str) -> None:
    # Opening a FIFO waits for a writer: a model path left pointing at one (directly or through a
    # symbolic link) held every RCA, the doctor and the report classifier for good.
    target = tmp_path / "pipe"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    path = tmp_path / "ranker.model"
    path.symlink_to(target)

    with pytest.raises(ModelRefused, match=rf"ranker.model is not a regular file \({named}\); retrain with `culprit train`"):
        read_model_file(path, "ranker", 1, ModelRefused, "retrain with `culprit train`")


def test_a_json_member_too_large_to_parse_is_refused_before_it_is_unpacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parsing JSON takes 13 to 34 times its size in memory: within the 2 GiB a model file may unpack
    # to, a few MB on disk parsed into tens of GB.
    from knowledge import model_files

    monkeypatch.setattr(model_files, "MAX_JSON_MEMBER_BYTES", 1024 * 1024, raising=False)
    path = tmp_path / "ranker.model"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps({"format": "ranker", "format_version": 1}))
        archive.writestr("component_maps.json", b"[" + b'"ab",' * 262_144 + b'"ab"]')  # a few kB on disk

    with pytest.raises(ModelRefused, match=r"member component_maps.json that unpacks to 1,310,726 bytes, over the 1,048,576 a JSON member may; retrain"):
        read_model_file(path, "ranker", 1, ModelRefused, "retrain with `culprit train`")
