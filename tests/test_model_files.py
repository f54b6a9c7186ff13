"""A model file is data: a member that claims more than it holds is refused, never allocated."""

from __future__ import annotations

import io
import json
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
