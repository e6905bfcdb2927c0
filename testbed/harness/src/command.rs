//! Running commands and turning their failures into [`LabError`]s.

use std::process::{Command, Output};

use crate::LabError;

/// The command line of `cmd`, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; a non-zero exit is a [`LabError::Command`] carrying its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output, LabError> {
    let command = describe(cmd);
    let out = cmd.output().map_err(|source| LabError::Spawn {
        command: command.clone(),
        source,
    })?;
    if out.status.success() {
        Ok(out)
    } else {
        let stderr = if out.stderr.is_empty() {
            String::from_utf8_lossy(&out.stdout)
        } else {
            String::from_utf8_lossy(&out.stderr)
        };
        Err(LabError::Command {
            command,
            status: out.status.to_string(),
            stderr: tail(&stderr, 4000),
        })
    }
}

/// Runs `cmd` and returns its standard output as text.
pub(crate) fn run_stdout(cmd: &mut Command) -> Result<String, LabError> {
    run(cmd).map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The last `max` bytes of `s` (on a char boundary), so errors stay readable.
pub(crate) fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.trim_end().to_owned();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", s.get(start..).unwrap_or_default().trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "...def");
        assert_eq!(tail("aé", 1), "...");
    }

    #[test]
    fn failing_command_reports_its_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        match err {
            LabError::Command {
                command, stderr, ..
            } => {
                assert_eq!(command, "sh -c echo boom >&2; exit 3");
                assert_eq!(stderr, "boom");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
