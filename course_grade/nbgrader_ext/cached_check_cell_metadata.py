"""nbgrader's CheckCellMetadata with one schema validator per process, for the grading workers.

Stock nbgrader checks every cell's nbgrader metadata with `jsonschema.validate(meta, schema)`,
which first validates the schema itself: twice per cell per submission (the sanitize and the
autograde passes), most of the time CheckCellMetadata takes. `CachedCheckCellMetadata` makes
the same checks in the same order (schema version too old / too new, then the schema, the
error jsonschema.validate would raise: `best_match`), with the schema's validator built once.
`tests/course_grade/nbgrader_ext/test_cached_check_cell_metadata.py` compares both on valid and corrupted metadata.
`use_cached_metadata_check` swaps it into a loaded course config (course_grade/engine/task.py);
stock `nbgrader` commands keep nbgrader's own.
"""
from __future__ import annotations

import functools
import json
import traceback

import jsonschema
from nbgrader.nbgraderformat import MetadataValidator, SchemaTooNewError, SchemaTooOldError, ValidationError
from nbgrader.nbgraderformat.common import BaseMetadataValidator
from nbgrader.preprocessors import CheckCellMetadata

STOCK = (CheckCellMetadata, "nbgrader.preprocessors.CheckCellMetadata",
         "nbgrader.preprocessors.checkcellmetadata.CheckCellMetadata")


@functools.lru_cache(maxsize=4)
def _validator(schema: str):
    loaded = json.loads(schema)
    cls = jsonschema.validators.validator_for(loaded)
    cls.check_schema(loaded)  # what jsonschema.validate does on every call
    return cls(loaded)


class _CachedBase(BaseMetadataValidator):
    """BaseMetadataValidator.validate_cell (the version checks, then the schema) with the cached
    validator. Placed after the version's validator in the MRO below, it is what that validator's
    `super().validate_cell` calls: every check of its own still runs."""

    def validate_cell(self, cell) -> None:
        if "nbgrader" not in cell.metadata:
            return
        schema = cell.metadata["nbgrader"].get("schema_version", 0)
        if schema < self.schema_version:
            raise SchemaTooOldError(f"Outdated schema version: {schema} (expected {self.schema_version})",
                                    schema, self.schema_version)
        if schema > self.schema_version:
            raise SchemaTooNewError(f"Schema version is too new: {schema} (expected {self.schema_version})",
                                    schema, self.schema_version)
        # its keys' order: the message's
        error = jsonschema.exceptions.best_match(
            _validator(json.dumps(self.schema)).iter_errors(cell.metadata["nbgrader"]))
        if error is not None:
            raise error


class _Validator(MetadataValidator, _CachedBase):
    pass


class CachedCheckCellMetadata(CheckCellMetadata):
    """CheckCellMetadata, the schema's validator built once per process."""

    def preprocess(self, nb, resources):
        try:
            _Validator().validate_nb(nb)
        except ValidationError as exc:
            self.log.error(traceback.format_exc())
            msg = "Notebook failed to validate; the nbgrader metadata may be corrupted."
            self.log.error(msg)
            raise ValidationError(msg) from exc
        return nb, resources


def chain(config, name: str) -> list:
    """Autograde's preprocessor list `name` as a loaded config makes it: set, changed in place
    (`.append` on nbgrader's default gives a LazyConfigValue), or the default."""
    from nbgrader.converters import Autograde
    from traitlets.config import LazyConfigValue

    value, default = config.Autograde.get(name), Autograde.class_traits()[name].default()
    return list(value.get_value(default) if isinstance(value, LazyConfigValue) else (value or default))


def use_cached_metadata_check(config) -> None:
    """Put CachedCheckCellMetadata where a loaded course config (or nbgrader's defaults) has
    CheckCellMetadata in the autograde pipeline, in place."""
    for name in ("sanitize_preprocessors", "autograde_preprocessors"):
        config.Autograde[name] = [CachedCheckCellMetadata if p in STOCK else p for p in chain(config, name)]
