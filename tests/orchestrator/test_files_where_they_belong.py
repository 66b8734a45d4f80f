"""Files only where they belong (issue 28 items 6 and 7): export and import never follow a symbolic
link out of their folder (no write, no delete, no read), read only regular files up to the image
limit and record what they read; a suite loader checks every path component, folders included, after
resolving links. In-process (layouts.export_edits / import_edits, load_benchmark), except the 6 GB
file, imported by the real CLI under a 3 GB address-space limit."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, orchestrator_cmd, png_bytes
from orchestrator import layouts
from orchestrator.benchmark import BenchmarkError, load_benchmark
from orchestrator.results import RunDir
from suites.shared.layout import LayoutError
from suites.shared.samples import Sample


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (links not followed): relative path -> bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def kris_release(folder: Path, categories=("color_change", "count_change")) -> Path:
    for category in categories:
        (folder / category).mkdir(parents=True, exist_ok=True)
        (folder / category / "annotation.json").write_text(json.dumps(
            {"1": {"ori_img": "1.jpg", "ins_en": f"{category} one", "explain_en": ""},
             "2": {"ori_img": "2.jpg", "ins_en": f"{category} two", "explain_en": ""}}))
        for key in ("1", "2"):
            (folder / category / f"{key}.jpg").write_bytes(png_bytes(color=(10, 20, 30)))
    return folder


def kris_samples(tmp_path: Path) -> list[Sample]:
    return load_benchmark(kris_release(tmp_path / "KRIS_Bench")).samples


# -- item 6: export ---------------------------------------------------------------------------------
def edits_for(samples, run: Path, failed: set[str]) -> dict:
    edits = {}
    for i, sample in enumerate(samples):
        if sample.id in failed:
            edits[sample.id] = {"status": "failed", "error": "boom"}
            continue
        rel = f"edits/{sample.category}/{sample.id}.png"
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(png_bytes(color=(i * 40, 0, 0)))
        edits[sample.id] = {"status": "ok", "path": rel}
    return edits


def test_export_never_writes_or_deletes_through_a_symlinked_subfolder_of_an_earlier_export(tmp_path):
    suite = layouts.get("kris")
    samples = kris_samples(tmp_path)
    run = tmp_path / "run"
    results = tmp_path / "results"
    first = layouts.export_edits(suite, samples, edits_for(samples, run, failed=set()), run, results, "m")
    assert first.written == 4 and (results / "m" / "color_change" / "2.jpg").is_file()

    # Someone's own folder, linked into the earlier export in place of a category folder.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "2.jpg").write_bytes(b"their file, not ours to delete")
    (theirs / "keep.txt").write_bytes(b"theirs")
    before = tree(theirs)
    for p in (results / "m" / "color_change").iterdir():
        p.unlink()
    (results / "m" / "color_change").rmdir()
    (results / "m" / "color_change").symlink_to(theirs, target_is_directory=True)

    edits = edits_for(samples, run, failed={"color_change_2"})  # its stale file would be deleted
    with pytest.raises(LayoutError, match="symbolic link") as info:
        layouts.export_edits(suite, samples, edits, run, results, "m")
    assert str(results / "m" / "color_change") in str(info.value) and "\n" not in str(info.value)
    assert tree(theirs) == before  # nothing written into the link's target, nothing deleted there


def test_export_refuses_a_method_folder_that_is_a_link_and_a_file_that_is_one(tmp_path):
    suite = layouts.get("kris")
    samples = kris_samples(tmp_path)
    run = tmp_path / "run"
    edits = edits_for(samples, run, failed=set())
    elsewhere = tmp_path / "elsewhere"
    layouts.export_edits(suite, samples, edits, run, elsewhere, "m")  # an earlier export, marker and all
    before = tree(elsewhere)
    results = tmp_path / "results"
    results.mkdir()
    (results / "m").symlink_to(elsewhere / "m", target_is_directory=True)
    with pytest.raises(LayoutError, match="symbolic link"):
        layouts.export_edits(suite, samples, edits, run, results, "m")
    assert tree(elsewhere) == before

    # A file of the layout that is a link (to a file of someone else's): not replaced, not written through.
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"victim")
    target = elsewhere / "m" / "count_change" / "1.jpg"
    target.unlink()
    target.symlink_to(victim)
    with pytest.raises(LayoutError, match="symbolic link"):
        layouts.export_edits(suite, samples, edits, run, elsewhere, "m")
    assert victim.read_bytes() == b"victim" and target.is_symlink()


def test_export_reads_only_the_runs_own_edit_files_and_records_them(tmp_path):
    suite = layouts.get("kris")
    samples = kris_samples(tmp_path)
    run = tmp_path / "run"
    edits = edits_for(samples, run, failed=set())
    secret = tmp_path / "outside.png"
    secret.write_bytes(png_bytes(color=(1, 2, 3)))
    linked = run / edits["color_change_1"]["path"]
    linked.unlink()
    linked.symlink_to(secret)                                 # an edit file that is a link out of the run
    edits["count_change_1"]["path"] = "../outside.png"        # an edits.jsonl path that leaves the run
    result = layouts.export_edits(suite, samples, edits, run, tmp_path / "results", "m")
    assert result.written == 2
    missing = "\n".join(result.missing)
    assert "color_change_1: " in missing and "count_change_1: " in missing and "symbolic link" in missing
    record = json.loads((tmp_path / "results" / "m" / "editfleet_export.json").read_text())
    read = {f["id"]: f for f in record["files"]}
    assert set(read) == {"color_change_2", "count_change_2"}
    data = (run / edits["count_change_2"]["path"]).read_bytes()
    assert read["count_change_2"] == {"id": "count_change_2", "path": "count_change/2.jpg",
                                      "from": edits["count_change_2"]["path"],
                                      "sha256": hashlib.sha256(data).hexdigest()}


# -- item 7: suite loaders and import ---------------------------------------------------------------
def test_a_kris_category_folder_that_links_out_of_the_benchmark_is_refused(tmp_path):
    bench = kris_release(tmp_path / "KRIS_Bench", categories=("count_change",))
    outside = kris_release(tmp_path / "outside", categories=("color_change",))
    (bench / "color_change").symlink_to(outside / "color_change", target_is_directory=True)
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(bench)
    assert "color_change" in str(info.value) and "outside" in str(info.value)

    # A link that stays inside the benchmark folder is fine: every component is checked once resolved.
    inside = tmp_path / "KRIS_Bench2"
    kris_release(inside / "store", categories=("color_change",))
    kris_release(inside, categories=("count_change",))
    (inside / "color_change").symlink_to(inside / "store" / "color_change", target_is_directory=True)
    assert len(load_benchmark(inside).samples) == 4


def test_an_image_link_to_a_6_gb_file_is_refused_by_validate_without_reading_it(tmp_path):
    bench = kris_release(tmp_path / "KRIS_Bench", categories=("count_change",))
    huge = bench / "count_change" / "huge.bin"
    with open(huge, "wb") as f:
        f.truncate(6 << 30)  # sparse: no disk used
    (bench / "count_change" / "1.jpg").unlink()
    (bench / "count_change" / "1.jpg").symlink_to(huge)
    done = subprocess.run(orchestrator_cmd("validate", str(bench)), cwd=REPO, capture_output=True, text=True,
                          timeout=120, preexec_fn=_limit_memory)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "MemoryError" not in output and "Traceback" not in output, output
    assert "count_change_1" in output and "over the limit of" in output, output


def kris_results(folder: Path, samples) -> Path:
    for sample in samples:
        path = folder / "m" / sample.category / f"{sample.extras['key']}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(color=(50, 60, 70)))
    return folder


def test_import_follows_no_link_out_of_its_folder_and_records_what_it_read(tmp_path):
    suite = layouts.get("kris")
    samples = kris_samples(tmp_path)
    folder = kris_results(tmp_path / "results", samples)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(png_bytes(color=(9, 9, 9)))
    out_link = folder / "m" / "color_change" / "1.jpg"
    out_link.unlink()
    out_link.symlink_to(outside)                                   # a link out: not read
    (folder / "m" / "store").mkdir()
    kept = folder / "m" / "store" / "two.png"
    kept.write_bytes(png_bytes(color=(1, 1, 1)))
    in_link = folder / "m" / "color_change" / "2.jpg"
    in_link.unlink()
    in_link.symlink_to(kept)                                       # a link that stays inside: read, recorded
    fifo = folder / "m" / "count_change" / "1.jpg"
    fifo.unlink()
    os.mkfifo(fifo)                                                # not a regular file: not opened for reading

    run = RunDir(tmp_path / "run").create()
    result = layouts.import_edits(suite, samples, run, folder, "m")
    assert result.imported == 2, result
    unreadable = "\n".join(result.unreadable)
    assert "color_change/1.jpg: " in unreadable and "leads out of" in unreadable
    assert "count_change/1.jpg: " in unreadable and "not a regular file" in unreadable
    lines = {json.loads(l)["id"]: json.loads(l) for l in (run.path / "edits.jsonl").read_text().splitlines()}
    assert lines["color_change_1"]["status"] == "failed" and "outside.jpg" not in json.dumps(lines["color_change_1"]["provenance"])
    moved = lines["color_change_2"]["provenance"]
    assert moved["from"] == str(kept) and moved["link"] == str(in_link)
    assert moved["sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()
    plain = lines["count_change_2"]["provenance"]
    assert plain["from"] == str(folder / "m" / "count_change" / "2.jpg") and "link" not in plain


def test_import_refuses_a_method_folder_that_links_out(tmp_path):
    suite = layouts.get("kris")
    samples = kris_samples(tmp_path)
    elsewhere = kris_results(tmp_path / "elsewhere", samples)
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "m").symlink_to(elsewhere / "m", target_is_directory=True)
    with pytest.raises(LayoutError, match="leads out of"):
        layouts.import_edits(suite, samples, RunDir(tmp_path / "run").create(), folder, "m")


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def test_import_of_a_link_to_a_6_gb_file_is_refused_before_reading_it(tmp_path):
    bench = kris_release(tmp_path / "KRIS_Bench")
    samples = load_benchmark(bench).samples
    folder = kris_results(tmp_path / "results", samples)
    huge = folder / "m" / "huge.bin"
    with open(huge, "wb") as f:
        f.truncate(6 << 30)  # sparse
    link = folder / "m" / "count_change" / "2.jpg"
    link.unlink()
    link.symlink_to(huge)
    done = subprocess.run(orchestrator_cmd("import", str(folder), "--layout", "kris", "--method", "m",
                                           "--benchmark", str(bench), "--output", str(tmp_path / "run")),
                          cwd=REPO, capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "MemoryError" not in output and "Traceback" not in output
    assert "count_change/2.jpg: " in output and "over the limit of" in output
