//! Dockerfile parsing (continuations, heredocs, `ARG` before `FROM`, stages) and the checks that flag slow or fat images, each with an id that can be silenced.
