"""The package's structure: layers checked by import-linter (pyproject.toml), private names kept private."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "privdomain"


def _private_imports() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        out.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {alias.name}")
    return out


def test_no_private_name_is_imported_across_modules():
    assert _private_imports() == []


def test_the_check_sees_a_private_import(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text("from .other import _hidden\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path)
    assert _private_imports() == ["m.py:1 imports _hidden"]


def test_the_layer_contracts_hold():
    import subprocess
    import sys

    root = PACKAGE.parents[1]
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(lint), "--config", str(root / "pyproject.toml")], cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "Contracts: " in res.stdout and " broken" in res.stdout and "0 broken" in res.stdout


def _modules_without_all(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "notebooks":  # the notebooks link: scripts, not modules
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
        if "__all__" not in names:
            out.append(str(rel))
    return out


def test_every_module_defines_all():
    assert _modules_without_all(PACKAGE) == []


def test_the_all_check_sees_a_module_without_it(tmp_path):
    (tmp_path / "a.py").write_text('__all__ = ["f"]\n\ndef f():\n    pass\n')
    (tmp_path / "b.py").write_text("def g():\n    pass\n")
    assert _modules_without_all(tmp_path) == ["b.py"]


def test_every_name_in_all_exists():
    import importlib

    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "notebooks":
            continue
        parts = ["privdomain", *rel.with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = importlib.import_module(".".join(parts))
        missing += [f"{module.__name__}.{name}" for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


NOTEBOOKS = PACKAGE.parents[1] / "notebooks"


def _private_uses(source: str) -> list[str]:
    """Imports of private privdomain modules or names, and private attributes of privdomain modules."""
    tree = ast.parse(source)
    bound: set[str] = set()
    out = []

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "privdomain":
                    if any(private(p) for p in alias.name.split(".")):
                        out.append(f"{node.lineno}: import {alias.name}")
                    bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "privdomain":
            if any(private(p) for p in node.module.split(".")):
                out.append(f"{node.lineno}: from {node.module}")
            for alias in node.names:
                if private(alias.name):
                    out.append(f"{node.lineno}: {alias.name} from {node.module}")
                bound.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in bound:
                out.append(f"{node.lineno}: {ast.unparse(node)}")
    return out


def test_notebooks_use_only_public_names():
    found = {p.name: _private_uses(p.read_text(encoding="utf-8")) for p in sorted(NOTEBOOKS.glob("*.py"))}
    assert len(found) >= 9
    assert {k: v for k, v in found.items() if v} == {}


def test_the_notebook_check_sees_private_names():
    src = ("import privdomain as pdm\nfrom privdomain.clv import _base\nfrom privdomain.funnel import _ordered\n"
           "from privdomain import reports\nx = reports._plain(1)\ny = pdm.funnel._ordered\nz = pdm.funnel.funnel\n"
           "import pandas as pd\nw = pd._libs\n")
    assert sorted(_private_uses(src)) == ["2: _base from privdomain.clv", "3: _ordered from privdomain.funnel",
                                          "5: reports._plain", "6: pdm.funnel._ordered"]


#: Functions with a ``con`` that read a table other than the events first (named after it).
NOT_EVENTS_FIRST = {
    "privdomain.boards.officialaccount.article_rates_daily": "data",  # the articles_daily table
}
METRIC_ROOMS = ("attribution", "audience", "boards", "clv", "experiments", "identity", "lifecycle")


def _metric_functions():
    import importlib
    import inspect
    import pkgutil

    seen = {}
    for room in METRIC_ROOMS:
        pkg = importlib.import_module(f"privdomain.{room}")
        modules = [pkg]
        if hasattr(pkg, "__path__"):
            modules += [importlib.import_module(f"{pkg.__name__}.{m.name}") for m in pkgutil.iter_modules(pkg.__path__)
                        if m.name != "plots"]
        for module in modules:
            for name in module.__all__:
                f = getattr(module, name)
                if inspect.isfunction(f) and f.__module__ == module.__name__:
                    seen[f"{module.__name__}.{name}"] = f
    return seen


def _contract_breaks(functions) -> list[str]:
    import inspect

    out = []
    for qual, f in functions.items():
        params = list(inspect.signature(f).parameters.values())
        names = [p.name for p in params]
        if "con" not in names:
            continue
        if params[names.index("con")].kind is not inspect.Parameter.KEYWORD_ONLY:
            out.append(f"{qual}: con is not keyword-only")
        first = NOT_EVENTS_FIRST.get(qual, "events")
        if names[0] != first:
            out.append(f"{qual}: first parameter is {names[0]!r}, not {first!r}")
    return out


def test_every_metric_that_reads_events_follows_the_contract():
    import inspect

    functions = _metric_functions()
    assert len([q for q, f in functions.items() if "con" in inspect.signature(f).parameters]) >= 50
    assert _contract_breaks(functions) == []


def test_the_contract_check_sees_a_break():
    def good(events, window="7D", *, con=None): ...
    def positional(events, con=None): ...
    def misnamed(data, *, con=None): ...
    def no_engine(frame): ...

    got = _contract_breaks({"m.good": good, "m.positional": positional, "m.misnamed": misnamed, "m.none": no_engine})
    assert got == ["m.positional: con is not keyword-only", "m.misnamed: first parameter is 'data', not 'events'"]


def test_old_keyword_names_still_work_with_a_warning():
    import warnings

    import pandas as pd

    from privdomain.boards.overview import overview
    from privdomain.examples import events_frame

    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:05", "pay",
                                                             {"order_id": 1, "amount_fen": 9900})])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = overview(data=ev)
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "overview(data=...) is deprecated" in str(caught[0].message)
    assert old == overview(ev)
    import pytest

    with pytest.raises(TypeError, match="events twice"):
        overview(ev, data=ev)
    assert pd.Timedelta("7D") == __import__("privdomain.contract").contract.duration("7D")


#: Old names of time bounds (docs/architecture.md, "The API contract", rule 4).
OLD_TIME_BOUNDS = ("observation_end", "observation_period_end", "date", "dates", "day", "days_until", "snapshot",
                   "cutoff", "until", "since", "period_end", "period_start")
#: Column arguments naming the events' own columns (rule 5: on no metric).
EVENT_COLUMN_ARGS = ("person_col", "time_col", "value_col", "ts_col", "amount_col", "event_col", "touchpoint_col")


def _time_and_column_breaks(functions) -> list[str]:
    import inspect

    from privdomain.contract import TIME_BOUNDS

    out = []
    for qual, f in functions.items():
        names = list(inspect.signature(f).parameters)
        for p in names:
            bound = p in OLD_TIME_BOUNDS or p.endswith(("_end", "_start", "_date", "_dates"))
            if bound and p not in TIME_BOUNDS:
                out.append(f"{qual}: time bound {p!r} (a period is start/end, a snapshot as_of)")
            if p in EVENT_COLUMN_ARGS or (names[0] == "events" and p.endswith("_col")):
                out.append(f"{qual}: column argument {p!r} (map the table with events.from_transactions)")
    return out


def test_time_bounds_have_one_spelling_and_no_metric_takes_column_arguments():
    functions = _metric_functions()
    assert {"privdomain.clv.rfm.rfm_summary", "privdomain.lifecycle.stages.stages_at",
            "privdomain.lifecycle.stages.stage_agreement"} <= set(functions)
    assert _time_and_column_breaks(functions) == []


def test_the_time_bound_check_sees_old_names_and_column_arguments():
    def good(events, *, as_of=None, start=None, end=None, con=None): ...
    def split(events, calibration_end, holdout_end, *, con=None): ...
    def old(events, observation_end=None, *, con=None): ...
    def snapshot(events, date, *, con=None): ...
    def columns(events, person_col="person_id", *, con=None): ...
    def summary(summary, recency_col="time_since_last"): ...  # columns of a result frame, not of the events

    got = _time_and_column_breaks({"m.good": good, "m.split": split, "m.old": old, "m.snapshot": snapshot,
                                   "m.columns": columns, "m.summary": summary})
    assert got == ["m.old: time bound 'observation_end' (a period is start/end, a snapshot as_of)",
                   "m.snapshot: time bound 'date' (a period is start/end, a snapshot as_of)",
                   "m.columns: column argument 'person_col' (map the table with events.from_transactions)"]


def test_old_time_bounds_and_column_arguments_still_work_with_a_warning():
    import warnings

    import pandas as pd
    import pytest

    from privdomain.clv.rfm import rfm_summary
    from privdomain.events import from_transactions
    from privdomain.examples import events_frame
    from privdomain.lifecycle.stages import stage_agreement, stages_at

    ev = events_frame([(1, "2024-01-01 09:00", "mp_visit"), (2, "2024-01-03 09:00", "mp_visit"),
                       (1, "2024-01-02 23:59", "pay", {"order_id": 1, "amount_fen": 100})])
    with pytest.warns(DeprecationWarning, match=r"stages_at\(date=\.\.\.\) is deprecated; use as_of="):
        old = stages_at(ev, date="2024-01-02")
    pd.testing.assert_frame_equal(old, stages_at(ev, as_of="2024-01-02"))
    truth = pd.DataFrame({"person_id": [1], "stage": ["prospect"], "valid_to": pd.NaT,
                          "valid_from": pd.to_datetime(["2024-01-01 09:00"]).tz_localize("Asia/Shanghai")})
    with pytest.warns(DeprecationWarning, match=r"stage_agreement\(dates=\.\.\.\) is deprecated; use as_of="):
        old = stage_agreement(ev, truth, dates=["2024-01-01"])
    pd.testing.assert_frame_equal(old, stage_agreement(ev, truth, "2024-01-01"))
    tx = pd.DataFrame({"cust": [7, 7], "day": pd.to_datetime(["2024-01-01", "2024-01-09"]), "usd": [1.5, 2.25]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = rfm_summary(tx, "cust", "day", "usd", observation_end="2024-01-10")
    assert sorted(str(w.message).split(" is ")[0] for w in caught) == [
        "rfm_summary(observation_end=...)", "rfm_summary(person_col=..., time_col=..., value_col=...)"]
    new = rfm_summary(from_transactions(tx, person="cust", time="day", value="usd"), as_of="2024-01-10")
    assert old.drop(columns="cust").equals(new.drop(columns="person_id"))
    assert new[["frequency", "t_x", "T", "monetary_value"]].values.tolist() == [[1.0, 8.0, 9.0, 2.25]]


def test_the_contract_decorator_maps_old_positional_and_legacy_arguments():
    import warnings

    import pytest

    from privdomain.contract import events_input

    calls = []

    def old_way(events, **kw):  # the behaviour kept for one release
        calls.append(kw)
        return "old"

    @events_input(renamed={"observation_end": "as_of"}, positional=("observation_end", "flag", "who"),
                  legacy=(old_way, {"who": "map the columns first"}))
    def new_way(events, *, as_of=None, flag=False, con=None):
        return ("new", as_of, flag)

    assert new_way([1]) == ("new", None, False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert new_way([1], observation_end="2024-01-01") == ("new", "2024-01-01", False)
        assert new_way([1], "2024-01-02", True) == ("new", "2024-01-02", True)
        assert new_way([1], "2024-01-03", False, None) == "old"  # a legacy keyword, even None, takes the old way
    assert calls == [{"who": None, "as_of": "2024-01-03", "flag": False}]
    assert [str(w.message) for w in caught] == [
        "new_way(observation_end=...) is deprecated; use as_of=",
        "new_way(): passing flag by position is deprecated; pass flag=...",
        "new_way(observation_end=...) is deprecated; use as_of=",
        "new_way(): passing flag by position is deprecated; pass flag=...",
        "new_way(observation_end=...) is deprecated; use as_of=",
        "new_way(who=...) is deprecated; map the columns first",
    ]
    with pytest.raises(TypeError, match="at most 4 positional arguments"):
        new_way([1], 1, 2, 3, 4)
    with pytest.raises(TypeError, match="multiple values for argument 'flag'"):
        new_way([1], None, True, flag=True)
