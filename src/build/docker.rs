//! docker buildx: commands built as values, digest from `--metadata-file`, cached/executed steps from `--progress=rawjson`.
