import csv

from test_study import ConvCount, synthetic

import archscout as asc
from archscout.reports.study_report import plot_pareto, write_html_report, write_trials_csv


def test_study_report_files(tmp_path):
    study = asc.create_study("nb201",
                             objectives=[asc.Objective("acc", "max"), asc.Objective("latency_ms", "min", "ms")],
                             constraints=["convs<=3", "latency_ms<=4"], cost_models={"convs": ConvCount()}, seed=0)
    study.optimize(synthetic, budget=25)
    write_trials_csv(study, str(tmp_path / "trials.csv"))
    with open(tmp_path / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(study.trials)
    assert {"number", "state", "arch", "acc", "latency_ms", "convs", "error"} <= set(rows[0])
    front = study.pareto_front()
    remeasured = {t.number: t.metrics["latency_ms"] * 1.05 for t in front}
    plot_pareto(study, str(tmp_path / "pareto.png"), remeasured=remeasured)
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    rows = [{"name": f"t{t.number}", "acc": t.metrics["acc"], "latency_ms": t.metrics["latency_ms"],
             "latency_ms_measured": remeasured[t.number]} for t in front]
    path = write_html_report(study, str(tmp_path), rows, ["name", "acc", "latency_ms", "latency_ms_measured"],
                             notes=["<script>not code</script>"])
    with open(path) as fh:
        text = fh.read()
    assert "pareto.png" in text and "trials.csv" in text
    assert "<script>" not in text  # everything user-given is escaped
    assert text.count("<tr>") == 1 + len(front) + 1 + len(study.trials)
