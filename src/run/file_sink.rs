//! [`FileSink`]: where a download's bytes go, hashed on the way, and never through a file that
//! someone else put there.

/// A local file that receives a command's stdout, hashed on the way.
pub(super) struct FileSink {
    file: std::io::BufWriter<std::fs::File>,
    hasher: sha2::Sha256,
    bytes: u64,
    error: Option<std::io::Error>,
}

impl FileSink {
    pub(super) fn create(path: &std::path::Path) -> std::io::Result<FileSink> {
        use sha2::Digest;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        // The name is new for every download (`get` adds a random part): something already
        // there was put there by someone else, maybe a symlink to a file to overwrite.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(FileSink {
            file: std::io::BufWriter::with_capacity(256 * 1024, file),
            hasher: sha2::Sha256::new(),
            bytes: 0,
            error: None,
        })
    }

    pub(super) fn write(&mut self, chunk: &[u8]) {
        use sha2::Digest;
        use std::io::Write;
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        if self.error.is_none() {
            if let Err(e) = self.file.write_all(chunk) {
                self.error = Some(e);
            }
        }
    }

    pub(super) fn finish(mut self) -> std::io::Result<(u64, String)> {
        use sha2::Digest;
        use std::io::Write;
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        Ok((self.bytes, crate::hex::encode(&self.hasher.finalize())))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_never_writes_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        let part = dir.path().join("out.rigs-part-1");
        std::os::unix::fs::symlink(&victim, &part).unwrap();
        assert!(FileSink::create(&part).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
        assert!(FileSink::create(&dir.path().join("fresh/out.rigs-part-2")).is_ok());
    }
}
