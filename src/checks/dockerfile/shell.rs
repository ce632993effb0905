//! Just enough of POSIX shell to read a RUN script as a list of simple
//! commands (`apt-get install -y gcc`, `rm -rf /var/lib/apt/lists/*`):
//! quotes, escapes, continuations, comments, `&&`/`||`/`;`/`|` and
//! subshells. Not an interpreter: variables are left as written.

/// One simple command: leading `NAME=value` assignments, then its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub env: Vec<(String, String)>,
    pub words: Vec<String>,
}

impl Command {
    pub fn program(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or("")
    }

    /// The program's file name (`/usr/bin/pip3` -> `pip3`).
    pub fn program_name(&self) -> &str {
        let p = self.program();
        p.rsplit('/').next().unwrap_or(p)
    }

    pub fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }

    pub fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }
}

/// Words that introduce a command without being it.
const PREFIXES: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time",
    "exec", "nohup", "command",
];

/// Splits `script` into simple commands.
pub fn commands(script: &str) -> Vec<Command> {
    raw_commands(script)
        .into_iter()
        .filter_map(normalize)
        .collect()
}

fn normalize(mut words: Vec<String>) -> Option<Command> {
    let mut env = Vec::new();
    while let Some(first) = words.first() {
        if PREFIXES.contains(&first.as_str()) {
            words.remove(0);
        } else if first == "sudo" || first == "env" {
            words.remove(0);
            while words.first().is_some_and(|w| w.starts_with('-')) {
                words.remove(0);
            }
        } else if let Some((name, value)) = assignment(first) {
            env.push((name, value));
            words.remove(0);
        } else {
            break;
        }
    }
    if words.is_empty() && env.is_empty() {
        None
    } else {
        Some(Command { env, words })
    }
}

fn assignment(word: &str) -> Option<(String, String)> {
    let (name, value) = word.split_once('=')?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_string(), value.to_string()))
}

fn raw_commands(script: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = script.chars().collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cmd: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;

    fn end_word(cmd: &mut Vec<String>, word: &mut String, in_word: &mut bool) {
        if *in_word {
            cmd.push(std::mem::take(word));
            *in_word = false;
        }
    }

    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                match chars.get(i + 1) {
                    Some('\n') => {}
                    Some(&n) => {
                        word.push(n);
                        in_word = true;
                    }
                    None => {}
                }
                i += 2;
                continue;
            }
            '\'' => {
                in_word = true;
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(chars.len(), |p| i + 1 + p);
                word.extend(&chars[i + 1..close]);
                i = close + 1;
                continue;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\'
                        && i + 1 < chars.len()
                        && matches!(chars[i + 1], '"' | '\\' | '$' | '`')
                    {
                        i += 1;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
                continue;
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                // Command substitution stays inside the word it belongs to.
                in_word = true;
                let mut depth = 0;
                while i < chars.len() {
                    word.push(chars[i]);
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            '`' => {
                in_word = true;
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .map_or(chars.len(), |p| i + 1 + p);
                word.extend(&chars[i..close.min(chars.len())]);
                word.push('`');
                i = close + 1;
                continue;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '&' if in_word && (word.ends_with('>') || word.ends_with('<')) => {
                // `2>&1` is a redirection, not a separator.
                word.push(c);
            }
            '\n' | ';' | '&' | '|' | '(' | ')' => {
                end_word(&mut cmd, &mut word, &mut in_word);
                if !cmd.is_empty() {
                    out.push(std::mem::take(&mut cmd));
                }
            }
            c if c.is_whitespace() => end_word(&mut cmd, &mut word, &mut in_word),
            c => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    end_word(&mut cmd, &mut word, &mut in_word);
    if !cmd.is_empty() {
        out.push(cmd);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<Vec<String>> {
        commands(script).into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn splits_on_operators_and_keeps_quoted_text_whole() {
        let got =
            words("apt-get update && apt-get install -y 'a b' \"c\\\"d\" || true; echo x | tee y");
        assert_eq!(
            got,
            vec![
                vec!["apt-get", "update"],
                vec!["apt-get", "install", "-y", "a b", "c\"d"],
                vec!["true"],
                vec!["echo", "x"],
                vec!["tee", "y"],
            ]
        );
    }

    #[test]
    fn strips_sudo_env_keywords_and_records_assignments() {
        let cmds = commands("if true; then sudo -E PIP_NO_CACHE_DIR=1 pip install x; fi");
        let pip = cmds
            .iter()
            .find(|c| c.program() == "pip")
            .expect("pip command");
        assert_eq!(
            pip.env,
            vec![("PIP_NO_CACHE_DIR".to_string(), "1".to_string())]
        );
        assert_eq!(pip.args(), ["install", "x"]);
    }

    #[test]
    fn comments_continuations_and_redirections() {
        let got = words("# setup\nmake \\\n  install 2>&1 # trailing\nrm -f $(ls /tmp) x");
        assert_eq!(
            got,
            vec![
                vec!["make", "install", "2>&1"],
                vec!["rm", "-f", "$(ls /tmp)", "x"]
            ]
        );
    }
}
