"""Learned proxy cost models: fitted to a study's logged accelerator designs, scored on held-out designs, saved,
and used as a cheap cost model by a later study."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

import archscout as asc
from archscout.errors import ConfigError, DataError
from archscout.hardware import cost_model_from_config, create_cost_model
from archscout.hardware.accelerator import AcceleratorEvaluator
from archscout.hardware.proxy import ProxyCostModel, design_features, fit_proxy, proxy_metrics
from archscout.hardware.systolic import ConvLayer

WORKLOAD = [ConvLayer("c1", 34, 34, 3, 3, 16, 32), ConvLayer("c2", 18, 18, 3, 3, 32, 64, 2, 2),
            ConvLayer("pw", 16, 16, 1, 1, 64, 128), ConvLayer("fc", 1, 1, 1, 1, 512, 100)]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A study that logged 300 random accelerator designs with their simulated metrics."""
    path = str(tmp_path_factory.mktemp("proxy") / "designs.db")
    study = asc.create_study("systolic", objectives=[("cycles", "min")], strategy="random", storage=path, seed=0)
    study.optimize(AcceleratorEvaluator(WORKLOAD), budget=300)
    return path


def test_features_hold_the_encoding_and_log_sizes():
    space = asc.create_space("systolic")
    arch = space.make({"rows": 16, "cols": 64, "dataflow": "ws", "ifmap_sram_kb": 32, "filter_sram_kb": 64,
                       "ofmap_sram_kb": 16, "bandwidth": 8})
    x = design_features(space, [arch])
    assert x.shape == (1, space.encoding_size("onehot") + 6)  # 6 numeric parameters
    assert list(x[0, -6:]) == [4.0, 6.0, 5.0, 6.0, 4.0, 3.0]


def test_proxy_metrics_by_hand():
    m = proxy_metrics([110.0, 90.0, 300.0], [100.0, 100.0, 200.0])
    assert m["mape"] == pytest.approx(100 * (0.1 + 0.1 + 0.5) / 3)
    assert m["rmse"] == pytest.approx(np.sqrt((100 + 100 + 10000) / 3))
    assert m["kendall_tau"] == pytest.approx(2 / 3, abs=0.2)
    with pytest.raises(ConfigError):
        proxy_metrics([1.0], [1.0])


def test_a_proxy_fitted_on_logged_designs_predicts_held_out_cycles(logged, tmp_path):
    study = asc.load_study(logged)
    fit = fit_proxy(study, "cycles", unit="cycles", seed=0)
    r = fit.report
    assert r["n_train"] + r["n_test"] == 300 and r["n_test"] == 60
    assert r["mape"] < 15.0 and r["kendall_tau"] > 0.8  # the benchmark shows the 500-design figure
    assert fit.test_predicted.shape == fit.test_actual.shape == (60,)
    # saved, rebuilt from its config, and used as a cheap cost model by a later study
    path = fit.model.save(tmp_path / "cycles.json")
    again = cost_model_from_config(fit.model.to_config())
    assert np.allclose(again.predict_many(fit.test_archs), fit.test_predicted)
    later = asc.create_study("systolic", objectives=[("cycles", "min")], constraints=["cycles<=1e12"],
                             cost_models={"cycles": create_cost_model("proxy", path=path, metric="cycles")},
                             strategy="random", seed=1)
    later.optimize(lambda arch: {"energy_mj": 1.0}, budget=5)
    assert all(t.metrics["cycles"] > 0 for t in later.trials)


def test_a_replaced_or_missing_proxy_file_is_a_clear_error(logged, tmp_path):
    fit = fit_proxy(asc.load_study(logged), "cycles", regressor="knn")
    path = fit.model.save(tmp_path / "p.json")
    cfg = fit.model.to_config()
    fit_proxy(asc.load_study(logged), "area_mm2", regressor="knn").model.save(path)  # replaced by another proxy
    with pytest.raises(DataError, match="changed since"):
        cost_model_from_config(cfg)
    with pytest.raises(ConfigError, match="predicts 'area_mm2'"):
        ProxyCostModel(path, metric="cycles")
    with pytest.raises(DataError, match="does not exist"):
        ProxyCostModel(tmp_path / "none.json")
    (tmp_path / "junk.json").write_text("not a proxy")
    with pytest.raises(DataError):
        ProxyCostModel(tmp_path / "junk.json")
    from sklearn.neighbors import KNeighborsRegressor

    with pytest.raises(ConfigError, match="only proxies with a named regressor"):
        fit_proxy(asc.load_study(logged), "cycles", regressor=KNeighborsRegressor()).model.save(tmp_path / "x.json")
    with pytest.raises(ConfigError, match="save the proxy first"):
        fit_proxy(asc.load_study(logged), "cycles", regressor="knn").model.to_config()


def test_bad_fits_are_refused(logged):
    study = asc.load_study(logged)
    with pytest.raises(DataError, match="no complete record"):
        fit_proxy(study, "accuracy")
    with pytest.raises(ConfigError, match="unknown regressor"):
        fit_proxy(study, "cycles", regressor="svm")
    with pytest.raises(ConfigError):
        fit_proxy(study, "cycles", test_size=1.5)
    few = [(t.arch, t.metrics["cycles"]) for t in study.trials[:5]]
    with pytest.raises(DataError, match="at least 10"):
        fit_proxy(few, "cycles")
    zeros = [(t.arch, 0.0) for t in study.trials[:20]]
    with pytest.raises(DataError, match="non-positive"):
        fit_proxy(zeros, "cycles")
    assert fit_proxy(zeros, "cycles", log_target=False, regressor="knn").report["rmse"] == 0.0
