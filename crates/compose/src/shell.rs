//! Splits a `command:` or `entrypoint:` string into words like a POSIX shell (and like the
//! shlex package docker's loader uses): blanks separate words, single quotes keep everything,
//! double quotes keep everything but `\"` and `\\`, a backslash escapes the next character,
//! and `#` at the start of a word starts a comment.

pub fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => word.push(n),
                    None => return Err("a command ends in an escape character".into()),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => word.push(n),
                        None => return Err("a command has an unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some('"') | Some('\\') | Some('$') | Some('`') => {
                                if let Some(n) = chars.next() {
                                    word.push(n);
                                }
                            }
                            _ => word.push('\\'),
                        },
                        Some(n) => word.push(n),
                        None => return Err("a command has an unclosed double quote".into()),
                    }
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(
            split("echo hello world").unwrap(),
            ["echo", "hello", "world"]
        );
        assert_eq!(
            split("sh -c 'echo $HOME; ls'").unwrap(),
            ["sh", "-c", "echo $HOME; ls"]
        );
        assert_eq!(
            split(r#"a "b \"c\"" d\ e"#).unwrap(),
            ["a", "b \"c\"", "d e"]
        );
        assert_eq!(split("a # comment").unwrap(), ["a"]);
        assert!(split("'open").is_err());
    }
}
