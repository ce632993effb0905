//! Context guard: the build context exactly as BuildKit sends it (`.dockerignore` with moby semantics), its size, its largest entries and the usual offenders, checked before anything is built.
