//! Tool-name patterns: `*` and `?` globs, matched against whole tool names.

/// Whether `pattern` is a glob (has `*` or `?`) rather than a plain name.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether `name` matches `pattern` as a whole: `*` any run of characters (also none), `?`
/// exactly one character, everything else literally (case-sensitive).
///
/// Uses the two-pointer star algorithm: on a mismatch only the most recent `*` is retried one
/// character further, so the cost stays at most pattern length × name length, never exponential.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !is_glob(pattern) {
        return pattern == name;
    }
    // Characters, not bytes: `?` stands for one character, however many bytes it takes.
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut at_pattern, mut at_name) = (0, 0);
    // The last `*` seen and the name position its current (shortest so far) run ends at.
    let mut last_star: Option<(usize, usize)> = None;
    while at_name < name.len() {
        match pattern.get(at_pattern) {
            Some('*') => {
                last_star = Some((at_pattern, at_name));
                at_pattern += 1;
            }
            Some(&wanted) if wanted == '?' || wanted == name[at_name] => {
                at_pattern += 1;
                at_name += 1;
            }
            _ => match last_star {
                // Let that `*` swallow one more character and try the rest again from there.
                Some((star, run_end)) => {
                    last_star = Some((star, run_end + 1));
                    at_pattern = star + 1;
                    at_name = run_end + 1;
                }
                None => return false,
            },
        }
    }
    pattern[at_pattern..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn globs_are_told_from_plain_names() {
        assert!(is_glob("*"));
        assert!(is_glob("get_?"));
        assert!(is_glob("fs.*.read"));
        assert!(!is_glob("read_file"));
        assert!(!is_glob(""));
        assert!(!is_glob("[a-z]"));
    }

    #[test]
    fn plain_names_match_only_themselves() {
        assert!(matches("read_file", "read_file"));
        assert!(!matches("read_file", "read_files"));
        assert!(!matches("read_file", "Read_file"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("read_*", "read_"));
        assert!(matches("read_*", "read_file"));
        assert!(matches("*_file", "read_file"));
        assert!(matches("*file*", "file"));
        assert!(matches("a*b*c", "abc"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(matches("**", "x"));
        assert!(!matches("read_*", "write_file"));
        assert!(!matches("*_file", "read_files"));
        assert!(!matches("a*b*c", "acb"));
    }

    #[test]
    fn star_retries_after_a_false_start() {
        // The first `b` is not the one the pattern's `bc` needs.
        assert!(matches("a*bc", "abxbc"));
        assert!(matches("*ab", "aab"));
        assert!(!matches("*ab", "aba"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(matches("get_?", "get_a"));
        assert!(!matches("get_?", "get_"));
        assert!(!matches("get_?", "get_ab"));
        assert!(matches("??", "ab"));
        assert!(matches("?*", "a"));
        assert!(!matches("?*", ""));
    }

    #[test]
    fn question_mark_matches_one_character_not_one_byte() {
        assert!(matches("caf?", "café"));
        assert!(matches("?", "日"));
        assert!(!matches("??", "日"));
        assert!(matches("*本", "日本"));
    }

    #[test]
    fn matching_is_case_sensitive() {
        assert!(!matches("Read_*", "read_file"));
        assert!(!matches("read_?", "READ_F"));
        assert!(matches("READ_?", "READ_F"));
    }

    #[test]
    fn many_stars_do_not_backtrack_exponentially() {
        let pattern = format!("{}b", "a*".repeat(30));
        let name = "a".repeat(5_000);
        let started = Instant::now();
        assert!(!matches(&pattern, &name));
        assert!(matches(&pattern, &format!("{name}b")));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
