import subprocess
import sys


def test_import_is_light_and_lazy_names_resolve():
    code = (
        "import sys, archscout as asc\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'sklearn', 'matplotlib', 'scipy', 'tqdm', 'optuna', 'ray', "
        "'psycopg') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(asc.create_cost_model) and callable(asc.load_dataset)\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_unknown_attribute():
    import archscout

    try:
        archscout.no_such_thing  # noqa: B018
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:
        raise AssertionError("expected AttributeError")
