"""Trained models as data: one zip of JSON, numpy arrays and text, never a pickle.

A pickle runs whatever code it names when loaded, so a model file left on a
shared volume could execute anything, and a module moved in a refactor breaks
every saved model. Here a model is a zip holding ``manifest.json`` (what kind
of model, which layout version) and members read with JSON, ``numpy.load``
with ``allow_pickle=False``, safetensors (network weights),
``scipy.sparse.load_npz`` or as plain text, so reading one can only produce
numbers and strings. Anything else, an old joblib file included, is refused
with the command that makes a new one.

The scikit-learn pieces the project trains (TF-IDF vectorizers, logistic
regressions) are stored as their learned arrays and put back into a blank
estimator built with the same settings, so it predicts exactly as before.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
import os
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from scipy.sparse import csr_matrix, load_npz, save_npz, spmatrix
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from knowledge.errors import CulpritError
from knowledge.lines import json_line

MANIFEST = "manifest.json"
ZIP_START = b"PK\x03\x04"  # how every model file ModelWriter writes begins: a zip's first member header
# Read before anything is decompressed, so a zip bomb on a shared volume is refused, not inflated:
# the largest real model (three repositories' maps and indexes) holds about 40 MB uncompressed.
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
# Parsing JSON takes 13 to 34 times its size in memory (strings and small mappings), so within the cap above
# one JSON member, a few MB on disk, could parse into tens of GB; the real ones are a few MB.
MAX_JSON_MEMBER_BYTES = 128 * 1024**2
# What ModelWriter writes; anything else (another method, encryption) is no culprit model file.
_COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
_ENCRYPTED = 0x1  # general purpose flag bit 0


class ModelWriter:
    """Collects the members of one model file, then writes them at once."""

    def __init__(self, kind: str, format_version: int) -> None:
        self._header = {"format": kind, "format_version": format_version}
        self._members: dict[str, bytes] = {}

    def add_json(self, name: str, value: Any) -> None:
        self._members[f"{name}.json"] = json.dumps(value, ensure_ascii=False).encode()

    def add_text(self, name: str, text: str) -> None:
        self._members[f"{name}.txt"] = text.encode()

    def add_array(self, name: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        self._members[f"{name}.npy"] = buffer.getvalue()

    def add_sparse_matrix(self, name: str, matrix: spmatrix) -> None:
        buffer = io.BytesIO()
        save_npz(buffer, matrix)
        self._members[f"{name}.npz"] = buffer.getvalue()

    def add_tensors(self, name: str, tensors: dict[str, np.ndarray]) -> None:
        """Named arrays as one safetensors member (network weights): a header and raw numbers, no code."""
        from safetensors.numpy import save

        self._members[f"{name}.safetensors"] = save({key: np.ascontiguousarray(value) for key, value in tensors.items()})

    def add_tfidf(self, name: str, vectorizer: TfidfVectorizer) -> None:
        """Its vocabulary (terms in column order) and idf weights: all ``transform`` learned."""
        terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        self.add_json(f"{name}.terms", terms)
        self.add_array(f"{name}.idf", vectorizer.idf_)

    def add_logistic(self, name: str, model: LogisticRegression) -> None:
        """Its coefficients, intercepts and classes: all ``predict_proba`` learned."""
        self.add_json(f"{name}.classes", model.classes_.tolist())
        self.add_array(f"{name}.coef", model.coef_)
        self.add_array(f"{name}.intercept", model.intercept_)

    def save(self, path: Path, manifest: dict[str, Any]) -> Path:
        """Write the file whole, then move it into place: a reader never sees half of it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(MANIFEST, json.dumps({**self._header, **manifest}, ensure_ascii=False))
                for name, content in self._members.items():
                    archive.writestr(name, content)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path


class ModelFile:
    """A model file's members, read back as data only."""

    def __init__(self, path: Path, members: dict[str, bytes], refuse: type[CulpritError], fix: str) -> None:
        self.path = path
        self._members = members
        self._refuse = refuse
        self._fix = fix
        manifest = self.json("manifest")
        self.manifest: dict[str, Any] = manifest if isinstance(manifest, dict) else {}

    def _member(self, name: str) -> bytes:
        if name not in self._members:
            raise self.refused(f"lacks {name}")
        return self._members[name]

    def refused(self, why: str) -> CulpritError:
        """The error for a file that cannot be used, naming the command that makes a good one."""
        return self._refuse(f"the model file {self.path} {why}; {self._fix}")

    @contextmanager
    def rebuilding(self) -> Iterator[None]:
        """Members that parse but do not have the shape a model needs (a missing key, a list for a
        mapping, a string for a count) are refused like a damaged file, never raised as they are."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise self.refused(f"does not hold the model it claims ({type(error).__name__}: {error})") from error

    def json(self, name: str) -> Any:
        try:
            return json_line(self._member(f"{name}.json"))
        except ValueError as error:  # also nesting past the parser's recursion, which crashed the load
            raise self.refused(f"has a damaged {name}.json ({error})") from error

    def has(self, name: str) -> bool:
        """Whether the file holds member ``name`` (with its extension): for parts newer files add."""
        return name in self._members

    def tensors(self, name: str) -> dict[str, np.ndarray]:
        from safetensors import SafetensorError
        from safetensors.numpy import load

        try:
            return load(self._member(f"{name}.safetensors"))
        except (SafetensorError, ValueError) as error:
            raise self.refused(f"has a damaged {name}.safetensors ({error})") from error

    def text(self, name: str) -> str:
        return self._member(f"{name}.txt").decode()

    def array(self, name: str) -> np.ndarray:
        """An array member. numpy allocates the shape its header declares before reading the data, so a
        header claiming petabytes raises MemoryError: refused like any damaged member."""
        try:
            return np.load(io.BytesIO(self._member(f"{name}.npy")), allow_pickle=False)
        except (ValueError, MemoryError) as error:  # ValueError: also what an array of Python objects raises
            raise self.refused(f"has a damaged {name}.npy ({type(error).__name__}: {error})") from error

    def sparse_matrix(self, name: str) -> csr_matrix:
        try:
            return load_npz(io.BytesIO(self._member(f"{name}.npz")))
        except (ValueError, OSError, KeyError, MemoryError) as error:
            raise self.refused(f"has a damaged {name}.npz ({type(error).__name__}: {error})") from error

    def tfidf(self, name: str, blank: TfidfVectorizer) -> TfidfVectorizer:
        """``blank`` (built with the trained one's settings) given the stored vocabulary and idf."""
        blank.vocabulary_ = {term: column for column, term in enumerate(self.json(f"{name}.terms"))}
        blank.idf_ = self.array(f"{name}.idf")
        return blank

    def logistic(self, name: str, blank: LogisticRegression) -> LogisticRegression:
        """``blank`` (built with the trained one's settings) given the stored coefficients."""
        blank.classes_ = np.array(self.json(f"{name}.classes"))
        blank.coef_ = self.array(f"{name}.coef")
        blank.intercept_ = self.array(f"{name}.intercept")
        blank.n_features_in_ = blank.coef_.shape[1]
        return blank


def leftover_pickle(path: Path, pickled_name: str) -> Path | None:
    """The pickle an earlier culprit saved under ``pickled_name`` beside a missing ``path`` (the default
    name then): named wherever the missing model would be, so the team is not left believing its own
    model answers; never read."""
    path = Path(path)
    old = path.with_name(pickled_name)
    return old if not path.exists() and old.is_file() else None


def pickled_model(old: Path) -> str:
    """What an answer, the CLI and ``culprit doctor`` say of a leftover pickle."""
    return f"the model file {old} is in an old format (pickle), not loaded"


def read_model_file(
    path: Path, kind: str, format_version: int, refuse: type[CulpritError], fix: str
) -> ModelFile:
    """Open a model file of ``kind`` in layout ``format_version``; anything else raises
    ``refuse`` with ``fix`` (the command that makes a usable one). Nothing in it is executed."""
    path = Path(path)
    try:
        with open_regular_file(path) as raw, zipfile.ZipFile(raw) as archive:
            declared = sum(info.file_size for info in archive.infolist())
            if declared > MAX_UNCOMPRESSED_BYTES:
                raise refuse(f"{path} would unpack to {declared:,} bytes, over {MAX_UNCOMPRESSED_BYTES:,}; {fix}")
            _check_members(path, archive, refuse, fix)
            members = {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile as error:
        if _starts_as_zip(path):  # a culprit model file, cut short (a copy or a full disk stopped) or damaged
            raise refuse(f"the model file {path} is damaged or cut short ({error}); {fix}") from error
        raise refuse(f"{path} is not a culprit model file (an old joblib or pickle file?); {fix}") from error
    except (zlib.error, EOFError) as error:  # a deflate stream broken or cut short inside the zip
        raise refuse(f"the model file {path} is damaged ({error}); {fix}") from error
    except NotRegularFile as error:
        raise refuse(f"the model file {path} is {error}; {fix}") from error
    except OSError as error:
        raise refuse(f"cannot read the model file {path} ({error}); {fix}") from error
    model_file = ModelFile(path, members, refuse, fix)
    found = (model_file.manifest.get("format"), model_file.manifest.get("format_version"))
    if found != (kind, format_version):
        raise model_file.refused(f"holds {found[0]!r} version {found[1]}, not {kind!r} version {format_version}")
    return model_file


def _starts_as_zip(path: Path) -> bool:
    """Whether ``path`` begins as every model file culprit writes does: then a zip that does not open is one
    of culprit's cut short or damaged, not an old pickle, and "retrain" is not what the reader needs to hear."""
    try:
        with open_regular_file(path) as raw:
            return raw.read(len(ZIP_START)) == ZIP_START
    except OSError:
        return False


class NotRegularFile(OSError):
    """A FIFO, device, socket or directory where a file of data was expected."""


def open_regular_file(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (through any symbolic link: volumes mount
    files as links). Opened without blocking and checked on the open descriptor, so a FIFO there,
    which a plain open waits on for a writer forever, or a device raises :class:`NotRegularFile` at once."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file ({_file_kind(mode)})")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a device")


def _check_members(path: Path, archive: zipfile.ZipFile, refuse: type[CulpritError], fix: str) -> None:
    """Refuse, before reading any, a JSON member too large to parse, or a member that is encrypted or
    compressed in a way culprit never writes (zipfile would raise RuntimeError or NotImplementedError,
    which say nothing of the file)."""
    for info in archive.infolist():
        if info.filename.endswith(".json") and info.file_size > MAX_JSON_MEMBER_BYTES:
            raise refuse(
                f"the model file {path} has a member {info.filename} that unpacks to {info.file_size:,} bytes, "
                f"over the {MAX_JSON_MEMBER_BYTES:,} a JSON member may; {fix}"
            )
        if info.flag_bits & _ENCRYPTED:
            raise refuse(f"the model file {path} has an encrypted member {info.filename!r}; {fix}")
        if info.compress_type not in _COMPRESSIONS:
            raise refuse(
                f"the model file {path} has a member {info.filename!r} compressed with method "
                f"{info.compress_type}, not stored or deflated; {fix}"
            )
