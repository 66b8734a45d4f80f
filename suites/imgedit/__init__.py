"""ImgEdit-Bench."""
