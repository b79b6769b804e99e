"""Importers: bring your own data into a privdomain dataset folder.

Each importer is a function and a ``privdomain import KIND SRC... --out DIR``
subcommand. It reads its source in chunks (bounded memory), converts money exactly
(decimal text to integer minor units, never through floats), states the time zone of
wall-clock times, runs identity unification (:func:`privdomain.identity.unify`) over
every id and id link it saw, and writes a dataset folder that passes
:func:`privdomain.validate.validate`. The manifest records the vocabulary
(:func:`privdomain.schema.vocabulary`), every source file with its sha256 hash, and
the rows read, kept and dropped by reason.

=================  ==========================================================
kind               function
=================  ==========================================================
``table``          :func:`import_table`: any CSV / Excel / Parquet with a mapping
``youshu-orders``  :func:`import_youshu_orders`: Youshu data-api order records
``mp-orders``      :func:`import_mp_orders`: a Mini Program order export
``wecom-contacts`` :func:`import_wecom_contacts`: WeCom external contacts
``oa-articles``    :func:`import_oa_articles`: Official Account article statistics
=================  ==========================================================

:mod:`privdomain.importers.export` writes a dataset out in these formats.
"""

from __future__ import annotations

from ._core import ImporterError, ImportResult, detect_encoding, sha256_file, to_minor_units
from .articles import import_oa_articles
from .orders import YOUSHU_STATUS, import_mp_orders, import_youshu_orders
from .table import import_table, load_mapping, parse_pairs
from .wecom import import_wecom_contacts

__all__ = ["ImporterError", "ImportResult", "KINDS", "YOUSHU_STATUS", "detect_encoding", "import_mp_orders", "import_oa_articles",
           "import_table", "import_wecom_contacts", "import_youshu_orders", "load_mapping", "parse_pairs", "sha256_file", "to_minor_units"]

#: Import kinds and their functions.
KINDS = {"table": import_table, "youshu-orders": import_youshu_orders, "mp-orders": import_mp_orders,
         "wecom-contacts": import_wecom_contacts, "oa-articles": import_oa_articles}
