"""suites/shared/hf_dataset.py: a Hugging Face dataset read from its downloaded folder. The files are
made here with pyarrow as `datasets` writes them (Image columns as struct<bytes, path>, the
`huggingface` schema metadata; Arrow files in the IPC stream format of save_to_disk); the split and
config each layout gets is the one `datasets` 5.2's load_dataset_builder gave for the same layouts
(checked outside the repository)."""

from __future__ import annotations

import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from suites.shared import hf_dataset as hf

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
HF_META = {b"huggingface": json.dumps({"info": {"features": {
    "key": {"dtype": "string", "_type": "Value"}, "image": {"_type": "Image"},
    "refs": {"feature": {"_type": "Image"}, "_type": "List"}}}}).encode()}


def png(color, size=(6, 5)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def table(keys, *, image=None, refs=True):
    cols = {"key": pa.array(keys, pa.string()),
            "image": pa.array(image if image is not None else [{"bytes": png((i * 40, 0, 0)), "path": f"{k}.png"}
                                                               for i, k in enumerate(keys)], IMAGE)}
    if refs:
        cols["refs"] = pa.array([[{"bytes": png("blue"), "path": None}, {"bytes": png("green"), "path": None}]
                                 for _ in keys], pa.list_(IMAGE))
    return pa.table(cols).replace_schema_metadata(HF_META)


def write(folder, rel, tbl, **kw):
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if rel.endswith(".parquet"):
        pq.write_table(tbl, path, **kw)
    else:
        with pa.ipc.new_stream(path, tbl.schema) as w:
            w.write_table(tbl, max_chunksize=kw.get("max_chunksize"))
    return path


def layout(folder) -> dict:
    out = {}
    for f in hf.data_files(folder):
        out.setdefault(f"{f.config}/{f.split}", []).append(f.relpath)
    return out


def test_splits_and_configs_as_datasets_infers_them(tmp_path):
    t = table(["a"])
    cases = {
        "shards": (["data/test-00000-of-00001.parquet", "data/validation-00000-of-00002.parquet",
                    "data/validation-00001-of-00002.parquet", ".cache/huggingface/x.parquet"],
                   {"default/validation": ["data/validation-00000-of-00002.parquet", "data/validation-00001-of-00002.parquet"],
                    "default/test": ["data/test-00000-of-00001.parquet"]}),
        "custom": (["data/dev-00000-of-00001.parquet", "data/train-00000-of-00002.parquet"],
                   {"default/train": ["data/train-00000-of-00002.parquet"], "default/dev": ["data/dev-00000-of-00001.parquet"]}),
        "converted": (["default/train/0000.parquet", "default/test/0000.parquet"],
                      {"default/train": ["default/train/0000.parquet"], "default/test": ["default/test/0000.parquet"]}),
        "arrow": (["train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow"],
                  {"default/train": ["train/data-00000-of-00002.arrow", "train/data-00001-of-00002.arrow"]}),
        "keyword": (["test.parquet", "foo.parquet"], {"default/test": ["test.parquet"]}),
        "none": (["foo.parquet", "bar/baz.parquet"], {"default/train": ["bar/baz.parquet", "foo.parquet"]}),
    }
    for name, (files, expected) in cases.items():
        for rel in files:
            write(tmp_path / name, rel, t)
        assert layout(tmp_path / name) == expected, name
    # README configs: config names, splits, patterns (a list, a glob), other front matter ignored
    folder = tmp_path / "readme"
    for rel in ("x/a.parquet", "x/b-1.parquet", "x/b-2.parquet", "data/ignored-train.parquet"):
        write(folder, rel, t)
    (folder / "README.md").write_text("---\nlicense: mit\nconfigs:\n- config_name: main\n  data_files:\n"
                                      "  - split: dev\n    path: x/a*\n  - split: test\n    path: [x/b-*.parquet]\n"
                                      "---\n# card\n")
    assert layout(folder) == {"main/dev": ["x/a.parquet"], "main/test": ["x/b-1.parquet", "x/b-2.parquet"]}
    assert hf.splits(folder) == {"main": ["dev", "test"]}
    assert [f.relpath for f in hf.data_files(folder, split="test")] == ["x/b-1.parquet", "x/b-2.parquet"]
    with pytest.raises(hf.HFDatasetError, match=r"no data file of split 'train' \(config/split there: main/dev, main/test\)"):
        hf.data_files(folder, split="train")
    # a README without configs: the files decide
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    assert "default/train" in layout(folder)


def test_save_to_disk_folder_and_readme_errors_name_the_file(tmp_path):
    folder = tmp_path / "saved"
    for split in ("train", "test"):
        write(folder, f"{split}/data-00000-of-00001.arrow", table(["a"]))
        (folder / split / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}],
                                                               "_split": None}))
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    assert layout(folder) == {"default/train": ["train/data-00000-of-00001.arrow"],
                              "default/test": ["test/data-00000-of-00001.arrow"]}
    (folder / "test" / "state.json").write_text(json.dumps({"_data_files": [{"filename": "../train/x.arrow"}]}))
    with pytest.raises(hf.HFDatasetError, match=r"test/state.json: _data_files must list"):
        hf.data_files(folder)

    bad = tmp_path / "bad"
    write(bad, "a.parquet", table(["a"]))
    for front, message in (("configs:\n- config_name: x\n  data_files: ../*.parquet\n", "must be a path inside"),
                           ("configs:\n- config_name: x\n  data_files: nothere/*.parquet\n", "no data file matches 'nothere/"),
                           ("configs: [1]\n", r"configs\[0\]: needs config_name"),
                           ("configs: [\n", "front matter cannot be read")):
        (bad / "README.md").write_text(f"---\n{front}---\n")
        with pytest.raises(hf.HFDatasetError, match=message) as info:
            hf.data_files(bad)
        assert "README.md" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(hf.HFDatasetError, match=r"empty: no data file \(\*.parquet, \*.arrow\)"):
        hf.data_files(tmp_path / "empty")


def test_rows_with_images_as_bytes_from_parquet_and_arrow(tmp_path):
    keys = [f"k{i}" for i in range(40)]
    write(tmp_path / "p", "data/test-00000-of-00001.parquet", table(keys), row_group_size=7)
    write(tmp_path / "a", "test/data-00000-of-00001.arrow", table(keys), max_chunksize=9)
    for name in ("p", "a"):
        files = hf.data_files(tmp_path / name, split="test")
        rows = list(hf.iter_rows(files, columns=("key", "image"), optional=("refs", "absent")))
        assert [r.record["key"] for r in rows] == keys
        assert [r.index for r in rows] == list(range(40)) and [r.order for r in rows] == list(range(1, 41))
        assert all(r.error is None for r in rows)
        first = rows[3].record
        assert set(first) == {"key", "image", "refs"}
        assert Image.open(io.BytesIO(first["image"])).getpixel((0, 0)) == (120, 0, 0)
        assert [Image.open(io.BytesIO(b)).getpixel((0, 0)) for b in first["refs"]] == [(0, 0, 255), (0, 128, 0)]
        assert rows[39].where == f"{files[0].relpath}[39]"
        assert hf.has_columns(tmp_path / name, ("key", "image")) and not hf.has_columns(tmp_path / name, ("key", "other"))
        assert hf.is_image_type(hf.schema(files[0]).field("image").type)
    assert hf.digest(hf.data_files(tmp_path / "p")) != hf.digest(hf.data_files(tmp_path / "a"))


def test_bad_rows_and_files_are_named_and_the_rest_is_read(tmp_path):
    folder = tmp_path / "d"
    images = [{"bytes": png("red"), "path": None}, {"bytes": None, "path": "/home/someone/x.jpg"},
              {"bytes": b"", "path": None}, None]
    write(folder, "data/test-00000-of-00003.parquet", table(["a", "b", "c", "d"], image=images, refs=False))
    write(folder, "data/test-00001-of-00003.parquet", pa.table({"key": ["e"]}))  # no image column
    (folder / "data" / "test-00002-of-00003.parquet").write_bytes(b"not parquet at all")
    rows = list(hf.iter_rows(hf.data_files(folder), columns=("key", "image")))
    assert [(r.where, r.error) for r in rows] == [
        ("data/test-00000-of-00003.parquet[0]", None),
        ("data/test-00000-of-00003.parquet[1]", "image: the image is not embedded in the file (its path: '/home/someone/x.jpg')"),
        ("data/test-00000-of-00003.parquet[2]", "image: an empty image"),
        ("data/test-00000-of-00003.parquet[3]", None),
        ("data/test-00001-of-00003.parquet", "data/test-00001-of-00003.parquet: missing column(s): image (it has: key)"),
        ("data/test-00002-of-00003.parquet", "data/test-00002-of-00003.parquet: not a Parquet file (no PAR1 at its end)"),
    ]
    assert rows[1].record == {"key": "b", "image": None} and rows[3].record == {"key": "d", "image": None}
    assert rows[4].record is None and rows[4].index is None

    # bounds: a row group over the limit is refused before it is read (its rows named), the next one read;
    # an image and a string over theirs are None in the record, named
    big = tmp_path / "big"
    write(big, "x.parquet", pa.table({"key": ["a", "b", "c" * 300, "d"],
                                      "image": pa.array([{"bytes": png("red"), "path": None}] * 2
                                                        + [{"bytes": png("red", (60, 60)), "path": None}] * 2, IMAGE)}),
          row_group_size=2)
    file = hf.data_files(big)
    limit = sum(file_meta.column(j).total_uncompressed_size for file_meta in [pq.ParquetFile(big / "x.parquet").metadata.row_group(0)]
                for j in range(file_meta.num_columns))
    rows = list(hf.iter_rows(file, max_row_group_bytes=limit, max_text_bytes=200))
    assert rows[0].record["key"] == "a" and rows[1].record["key"] == "b"
    assert rows[2].record is None and rows[2].error.startswith("rows 2-3 (row group 1): ") and "over the limit" in rows[2].error
    rows = list(hf.iter_rows(file, max_image_bytes=len(png("red")), max_text_bytes=200))
    assert rows[2].record == {"key": None, "image": None}
    assert rows[2].error == (f"key: a string of 300 bytes, over the limit of 200 bytes; image: an image of "
                             f"{len(png('red', (60, 60)))} bytes, over the limit of {len(png('red'))} bytes")

    # an Arrow stream cut short: the rows before the cut, then one error from where it broke
    cut = tmp_path / "cut"
    path = write(cut, "train/data-00000-of-00001.arrow", table([f"k{i}" for i in range(30)], refs=False), max_chunksize=10)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    rows = list(hf.iter_rows(hf.data_files(cut)))
    assert [r.record["key"] for r in rows[:-1]] == [f"k{i}" for i in range(len(rows) - 1)] and len(rows) - 1 in (10, 20)
    assert rows[-1].record is None and rows[-1].error.startswith(f"rows from {len(rows) - 1} on cannot be read")


def test_links_out_of_the_folder_are_refused_but_an_hf_cache_snapshot_is_read(tmp_path):
    outside = write(tmp_path / "elsewhere", "x.parquet", table(["a"]))
    folder = tmp_path / "d"
    (folder / "data").mkdir(parents=True)
    os.symlink(outside, folder / "data" / "test-00000-of-00001.parquet")
    (rows,) = hf.iter_rows(hf.data_files(folder))
    assert rows.record is None and "leads out of the dataset folder" in rows.error
    with pytest.raises(hf.HFDatasetError, match="leads out"):
        hf.digest(hf.data_files(folder))

    # <cache>/datasets--o--n/snapshots/<rev>/data/... -> ../../../blobs/<hash>, as huggingface_hub lays it out
    repo = tmp_path / "hub" / "datasets--o--n"
    (repo / "blobs").mkdir(parents=True)
    pq.write_table(table(["a"]), repo / "blobs" / "0123abcd")
    snap = repo / "snapshots" / "rev1"
    (snap / "data").mkdir(parents=True)
    os.symlink("../../../blobs/0123abcd", snap / "data" / "test-00000-of-00001.parquet")
    (row,) = hf.iter_rows(hf.data_files(snap), columns=("key",))
    assert row.record == {"key": "a"} and row.error is None
