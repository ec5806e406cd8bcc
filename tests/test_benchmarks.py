"""NB201 CSV table reader and table/NB301 estimators on a tiny table made here."""

from __future__ import annotations

import random

import pytest

from genotypes import parse_genotype
from nas.benchmarks import NB201Table, to_nb301_genotype
from nas.cli import NASError, UsageError
from nas.estimators import TableEstimator
from nas.spaces import NB201Space
from tests.conftest import make_table


def test_query_rank_best(tmp_path):
    archs = make_table(tmp_path / "t.csv")
    t = NB201Table(tmp_path / "t.csv")
    vals = [t.query(a, "cifar10_valid_acc") for a in archs]
    top = archs[max(range(len(vals)), key=vals.__getitem__)]
    assert t.best("cifar10_valid_acc")[0] == t.canonical(top)
    assert t.rank(top, "cifar10_valid_acc") == 1
    assert t.query(archs[0], "cifar10_test_acc") == pytest.approx(vals[0] + 1, abs=1e-3)


def test_missing_column_lists_columns(tmp_path):
    make_table(tmp_path / "t.csv")
    with pytest.raises(UsageError, match="cifar10_test_acc"):
        TableEstimator(tmp_path / "t.csv", "no_such_metric")


def test_arch_not_in_table(tmp_path):
    archs = make_table(tmp_path / "t.csv", n=5)
    t = NB201Table(tmp_path / "t.csv")
    other = next(a for a in NB201Space().enumerate() if a not in archs)
    with pytest.raises(NASError, match="not in t.csv"):
        t.query(other, "cifar10_valid_acc")
    with pytest.raises(ValueError, match="bogus"):
        t.query("|bogus~0|", "cifar10_valid_acc")


def test_cost_from_time_column_or_one_query(tmp_path):
    archs = make_table(tmp_path / "a.csv", time_col=True)
    s = TableEstimator(tmp_path / "a.csv", "cifar10_valid_acc").score(archs[3])
    assert s.cost_seconds == 103.0
    archs = make_table(tmp_path / "b.csv")
    s = TableEstimator(tmp_path / "b.csv", "cifar10_valid_acc").score(archs[3])
    assert s.cost_seconds == 1.0 and s.extras["cost_unit"] == "query"


def test_nb301_conversion():
    g = parse_genotype("DARTS_V2")
    nb = to_nb301_genotype(g)
    assert len(nb.normal) == 8 and nb.normal_concat == [2, 3, 4, 5]
    assert nb.normal[0] == g.normal[0][0] and nb.reduce[-1] == g.reduce[-1][-1]
    with pytest.raises(ValueError, match="2 inputs"):
        from nas.strategies import make_encoding
        enc = make_encoding("darts", "bpe")
        to_nb301_genotype(enc.sample(random.Random(0)))


def test_nb301_missing_package_is_clear():
    from nas.estimators import NB301Estimator
    try:
        import nasbench301  # noqa: F401
        pytest.skip("nasbench301 installed")
    except ImportError:
        pass
    with pytest.raises(NASError, match="pip install nasbench301") as err:
        NB301Estimator("/nonexistent")
    for pkg in ("torch-geometric", "torch-scatter", "torch-cluster", "h5py", "xgboost", "ConfigSpace", "ipython"):
        assert pkg in str(err.value)
    assert "--nb301_model_dir" in str(err.value) and "xgb_v1.0" in str(err.value)


def test_nb301_model_folder_finds_the_ensemble(tmp_path):
    from nas.benchmarks import nb301_model_folder

    member = tmp_path / "nb_models_1.0" / "xgb_v1.0" / "surrogate_model_0"
    member.mkdir(parents=True)
    (member / "surrogate_model.model").write_bytes(b"")
    assert nb301_model_folder(tmp_path / "nb_models_1.0") == member.parent
    assert nb301_model_folder(member.parent) == member.parent
    with pytest.raises(NASError, match="xgb_v1.0"):
        nb301_model_folder(tmp_path)


def test_pth_needs_trust_flag(tmp_path):
    from nas.estimators import NB201ApiEstimator
    with pytest.raises(UsageError, match="--trust_benchmark_pickle"):
        NB201ApiEstimator(tmp_path / "x.pth")
