//! `rigs inventory import KIND FILE|-`: the command around the converters of [`crate::import`].
//!
//! The converted inventory goes to stdout, so it can be read, piped or redirected, and the
//! warnings to stderr, so a redirect keeps the TOML clean. `-o FILE` refuses to replace a file
//! without `--force`: an inventory someone already edited is worth more than a fresh conversion.

use std::io::Read;
use std::path::Path;

use crate::cli::{Import, ImportKind};
use crate::error::{Error, Result, EXIT_USAGE};

/// What `rigs inventory import` prints on stdout and on stderr.
pub struct Printed {
    pub stdout: String,
    pub stderr: String,
}

/// Reads the input, converts it, and writes the `--out` file when there is one.
pub fn run(request: &Import) -> Result<Printed> {
    let failed = |message: String| Error::Failed {
        message,
        code: EXIT_USAGE,
    };
    let stdin = request.input == Path::new("-");
    let origin = if stdin {
        "<stdin>".to_string()
    } else {
        request.input.display().to_string()
    };
    let exists = request
        .out
        .as_ref()
        .is_some_and(|out| std::fs::symlink_metadata(out).is_ok());
    if let (true, false, Some(out)) = (exists, request.force, &request.out) {
        return Err(failed(format!(
            "{} exists; nothing was written. Add --force to replace it, or choose another -o FILE",
            out.display()
        )));
    }
    let text = if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| failed(format!("cannot read the inventory from stdin: {e}")))?;
        text
    } else {
        std::fs::read_to_string(&request.input).map_err(|e| {
            failed(format!(
                "cannot read {origin}: {e}; give the {} file to import, or `-` for stdin",
                what(request.kind)
            ))
        })?
    };
    let kind = match request.kind {
        ImportKind::Ansible => crate::import::Kind::Ansible,
        ImportKind::Kamal => crate::import::Kind::Kamal,
    };
    let imported = crate::import::import(kind, &text, &origin).map_err(failed)?;
    let mut stderr: String = imported
        .warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect();
    let Some(out) = &request.out else {
        return Ok(Printed {
            stdout: imported.toml,
            stderr,
        });
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(out, &imported.toml).map_err(|e| Error::io(out, e))?;
    let verb = if exists { "replaced" } else { "wrote" };
    stderr.push_str(&format!(
        "{verb} {} from {origin}; `rigs -I {} --list-hosts` shows what rigs reads in it\n",
        out.display(),
        crate::quote::quote(&out.display().to_string())
    ));
    Ok(Printed {
        stdout: String::new(),
        stderr,
    })
}

fn what(kind: ImportKind) -> &'static str {
    match kind {
        ImportKind::Ansible => "Ansible inventory (INI, YAML or JSON)",
        ImportKind::Kamal => "Kamal deploy.yml",
    }
}
