//! buildah (daemonless): `bud --layers` with registry cache, `--digestfile`, push.
