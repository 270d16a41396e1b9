"""The few-step challenge (tools.grading.challenge, issue 22 item 5): handout, sandbox and grades.

One class of nine students is graded once (module fixture, about a minute on a loaded 2-core
machine): the handout's template trained for a few hundred steps (good), an untrained network
(bad but honest) and the malicious fixtures of tests/challenge_submissions/ (README there).
The sandbox's parts (the counting wrapper, the audit hook's rules) are also tested in this
process, without a subprocess.
"""
import csv
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from tools.grading import assignment, challenge, grade
from tools.grading.challenge_handout import write_handout
from tools.grading.challenge_sandbox import ContractError, CountingNet, Sandbox

FIXTURES = Path(__file__).parent / "challenge_submissions"
NFE = (1, 2, 4)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("challenge")
    subs = tmp / "subs"
    subs.mkdir()
    for p in FIXTURES.glob("*.py"):
        shutil.copy(p, subs / p.name)
    assert assignment.main(["--challenge", "fewstep", "--out", str(subs / "good")]) == 0
    torch.set_num_threads(1)
    _load(subs / "good" / "submission.py", "challenge_good").train(steps=400)
    assert (subs / "good" / "weights.pt").exists()
    lines = []
    limits = challenge.ChallengeLimits(sample=10.0)  # the loop is stopped after 10 s
    entries = challenge.grade_challenge(subs, tmp / "out", seed=1234, limits=limits, jobs=10, log=lines.append)
    return {e.student: e for e in entries}, tmp / "out", "\n".join(lines)


EXPECTED = {"good": "ok", "untrained": "ok", "passthrough": "ignores network", "own_moons": "ignores network",
            "reads_reference": "forbidden", "forever": "timeout", "over_budget": "over budget",
            "hidden_copy": "over budget", "malformed": "bad output"}


def test_every_submission_gets_its_status(graded):
    entries, _, _ = graded
    assert {s: e.status for s, e in entries.items()} == EXPECTED


def test_the_good_submission_beats_the_bad_and_the_baseline(graded):
    entries, out, _ = graded
    meta = json.loads((out / "grades.json").read_text())["challenge"]
    good, bad = entries["good"], entries["untrained"]
    assert good.evaluations == {k: 1.0 * k for k in NFE}, "the good sampler spends exactly its budget"
    for k in NFE:
        assert good.w2[k] < bad.w2[k] and good.w2[k] < meta["baseline"], (k, good.w2, bad.w2, meta["baseline"])
        assert good.w2[k] > meta["floor"] - 3 * meta["floor_sd"]
    assert meta["floor"] < meta["baseline"]
    assert all(0 <= good.precision[k] <= 1 and 0 <= good.recall[k] <= 1 for k in NFE)


def test_void_scores_and_their_reasons(graded):
    entries, _, _ = graded
    for s in ("passthrough", "own_moons", "reads_reference", "forever", "over_budget", "hidden_copy"):
        assert all(entries[s].w2[k] is None for k in NFE), s
    assert entries["over_budget"].evaluations == {1: 2.0, 2: 3.0, 4: 5.0}  # one call, k + 1 stacked copies
    assert "called around the counter" in " ".join(entries["hidden_copy"].notes)
    assert all(v == 0 for v in entries["own_moons"].sensitivity.values())
    notes = " ".join(entries["reads_reference"].notes)
    for what in ("/cmdline", "listing", "challenge.py", "utils.datasets.moons while sampling"):
        assert what in notes, notes
    assert "sample at 1 NFE: ran past its time limit" in " ".join(entries["forever"].notes)
    m = entries["malformed"]
    assert m.statuses == {1: "bad output", 2: "bad output", 4: "ok"} and m.w2[4] is not None
    assert "shape (1000, 1)" in " ".join(m.notes) and "NaN" in " ".join(m.notes)


def test_grades_csv_leaderboard_and_table(graded):
    entries, out, log = graded
    rows = list(csv.DictReader(open(out / "grades.csv")))
    assert list(rows[0]) == ["student", "status", "w2_1nfe", "w2_2nfe", "w2_4nfe", "evaluations", "notes"]
    by = {r["student"]: r for r in rows}
    assert by["good"]["evaluations"] == "1/2/4" and all(by["good"][f"w2_{k}nfe"] for k in NFE)
    assert by["over_budget"]["w2_1nfe"] == "" and "evaluated 2 times" in by["over_budget"]["notes"]
    board = list(csv.DictReader(open(out / "leaderboard.csv")))
    ranked = [r["student"] for r in board if r["rank"]]
    assert ranked[:3] == ["good", "untrained", "malformed"], ranked  # void budgets rank after full ones
    assert any("floor" in r["student"] for r in board) and any("baseline" in r["student"] for r in board)
    assert "W2 1 NFE" in log and "floor (data vs data)" in log
    # the reference sample is never written out
    assert '"x"' not in (out / "grades.json").read_text()
    assert not any(len(p.read_bytes()) > 200_000 for p in out.iterdir())


def test_handout_and_make_targets(tmp_path, capsys):
    msg = write_handout(tmp_path / "h")
    assert "fewstep" in msg
    tpl = (tmp_path / "h" / "submission.py").read_text()
    assert "def build()" in tpl and "def sample(net, z: torch.Tensor, nfe: int)" in tpl
    readme = (tmp_path / "h" / "README.md").read_text()
    assert "1, 2 and 4 network evaluations" in readme and "4096 MiB" in readme
    assert json.loads((tmp_path / "h" / "challenge.json").read_text())["nfe"] == [1, 2, 4]
    (tmp_path / "empty").mkdir()
    assert grade.main([str(tmp_path / "empty"), str(tmp_path / "out"), "--challenge", "fewstep"]) == 0
    assert (tmp_path / "out" / "leaderboard.csv").exists()
    make = (Path(challenge.ROOT) / "Makefile").read_text()
    assert "--challenge $(CHALLENGE)" in make


def test_counting_net_counts_rows_and_refuses_hidden_batches():
    lin = torch.nn.Linear(2, 2)
    net = CountingNet(lin, n=10, dim=2)
    z = torch.randn(10, 2)
    net(z)
    net(z[:5])
    net(torch.cat([z, z]))
    assert net.evaluations == pytest.approx(3.5) and net.calls == 3
    with pytest.raises(ContractError, match="first argument"):
        net(torch.randn(10, 3))
    with pytest.raises(ContractError, match="vmap"):
        torch.vmap(net)(torch.stack([z, z]))
    moved = CountingNet(lin, n=10, dim=2, offset=7)
    assert torch.allclose(moved(z), moved(z)) and not torch.allclose(moved(z), lin(z))
    assert net.weight is lin.weight  # the module's attributes stay reachable
    net.forward(z)
    assert net.calls == 4, "net.forward is counted too"

    class Broadcast(torch.nn.Module):  # evaluates 3 times the rows it is given points for
        def forward(self, x, t):
            return torch.cat([x] * 3) + t[:, None]

    wide = CountingNet(Broadcast(), n=10, dim=2)
    wide(z, torch.zeros(30))
    assert wide.evaluations == pytest.approx(3.0), "the other inputs' and the output's batch count too"


def test_modules_called_around_the_counter_are_caught(tmp_path):
    sb = Sandbox(str(tmp_path), [])
    lin, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    net = CountingNet(lin, n=4, dim=2, sandbox=sb)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(sb.module_hook)
    try:
        sb.sampling = True
        net(torch.randn(4, 2))  # inside the counter: fine
        for module in (lin, other):  # the same module called directly, or a private one
            with pytest.raises(ContractError, match="around the counter"):
                module(torch.randn(4, 2))
        assert sb.uncounted == 2
    finally:
        handle.remove()


def test_sandbox_rules(tmp_path):
    sb = Sandbox(str(tmp_path), [sys.base_prefix])
    sb.hook("open", (str(tmp_path / "w.pt"), "rb", 0))  # inactive: everything passes
    sb.active = True
    sb.hook("open", (str(tmp_path / "w.pt"), "wb", 0))  # its own folder
    sb.hook("open", (str(Path(sys.base_prefix) / "lib" / "x.py"), "r", 0))  # reading the installation
    for event, args in [("open", ("/etc/hostname", "r", 0)), ("open", (str(Path(sys.base_prefix) / "x"), "w", 0)),
                        ("open", (3, "w", 0)), ("os.listdir", ("/",)), ("subprocess.Popen", ("ls",)),
                        ("socket.connect", (None,)), ("ctypes.dlopen", ("libc",))]:
        with pytest.raises(PermissionError):
            sb.hook(event, args)
    sb.hook("os.remove", (str(tmp_path / "w.pt"), -1))  # changes in its own folder
    with pytest.raises(PermissionError, match="os.rename on"):
        sb.hook("os.rename", (str(tmp_path / "a"), "/tmp/elsewhere", -1, -1))
    sb.hook("import", ("utils.datasets",))  # allowed while building (training data)
    sb.sampling = True
    with pytest.raises(PermissionError, match="while sampling"):
        sb.hook("import", ("sklearn.datasets",))
    assert len(sb.denied) == 9


def test_sklearn_generators_are_refused_while_sampling(tmp_path, monkeypatch):
    import types

    from tools.grading.challenge_sandbox import _guard_data

    fake = types.ModuleType("sklearn.datasets")
    fake.make_moons = lambda n: "moons"
    monkeypatch.setitem(sys.modules, "sklearn.datasets", fake)
    sub = types.ModuleType("submission")
    sub.make_moons = fake.make_moons  # from sklearn.datasets import make_moons, before build()
    sb = Sandbox(str(tmp_path), [])
    _guard_data(sb, sub)
    assert sub.make_moons(3) == "moons" and fake.make_moons(3) == "moons"  # allowed while building
    sb.sampling = True
    for fn in (sub.make_moons, fake.make_moons):
        with pytest.raises(PermissionError, match="make_moons while sampling"):
            fn(3)


def test_seeds_are_secret_unless_given(graded):
    _, out, _ = graded
    meta = json.loads((out / "grades.json").read_text())["challenge"]
    assert meta["seed"] == 1234 and meta["seed_given"]
    assert challenge._seeds(1234) == challenge._seeds(1234)  # --seed grades late submissions alike
    a, b = challenge._seeds(None), challenge._seeds(None)
    assert a["master"] != b["master"] and a["reference"] != b["reference"]
