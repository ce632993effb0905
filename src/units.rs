//! How sizes and durations are written and read, one convention everywhere: decimal
//! units, as docker prints them (`89.4 MB` for 89,443,532 bytes) — in the
//! log, the job summary, the PR comment, Slack and the `*-mb` limits alike.

/// One megabyte, as the `*-mb` inputs count it.
pub const MB: u64 = 1_000_000;

/// Bytes for people: `512 B`, `1.5 kB`, `89.4 MB`, `1.2 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `limit_mb` megabytes in bytes.
pub fn megabytes(limit_mb: u64) -> u64 {
    limit_mb.saturating_mul(MB)
}

/// Durations for people: `850ms`, `12.3s`, `2m 05s`, `1h 02m`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".into();
    }
    if seconds < 1.0 {
        return format!("{}ms", (seconds * 1000.0).round() as u64);
    }
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let total = seconds.round() as u64;
    if total < 3600 {
        format!("{}m {:02}s", total / 60, total % 60)
    } else {
        format!("{}h {:02}m", total / 3600, (total % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 kB");
        assert_eq!(
            bytes(89_443_532),
            "89.4 MB",
            "docker images prints 89.4MB for this image"
        );
        assert_eq!(bytes(1_500_000_000), "1.5 GB");
        assert_eq!(megabytes(200), 200_000_000);
        assert_eq!(megabytes(u64::MAX), u64::MAX);
    }
}
