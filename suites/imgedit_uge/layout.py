"""ImgEdit-Bench UGE's results layout: the basic suite's (suites/imgedit/layout.py), which UGE_bench.py
reads the same way (`<result_img_folder>/<key>.png`, Benchmark/UGE/UGE_bench_readme.md):

    <folder>/<method>/<key>.png

`python UGE_bench.py --result_img_folder <folder>/<method> --edit_json UGE_edit.json --origin_img_root
<the original images>` then judges it unchanged.
"""

from suites.imgedit.layout import DESCRIPTION, edit_relpath, extra_files, root

__all__ = ["DESCRIPTION", "root", "edit_relpath", "extra_files"]
