//! The files side of `retention.archive` (`to = "files"`): every row a
//! purge batch removes is appended, as one JSON object per line, to the
//! run's (or the UTC day's) file, and the file is fsynced before the
//! batch's delete commits. A crash between the fsync and the commit keeps
//! the rows in the table, so the next run archives them again: the files
//! may hold a row twice, never lose one. The table side is SQL
//! (`tombstone.archive`, `src/migrate/guard.rs`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::FilePer;

/// Where one purge run appends its archive lines.
#[derive(Debug)]
pub struct ArchiveFiles {
    directory: PathBuf,
    per: FilePer,
    /// The run's file name stem (its start, UTC, and the process id).
    run: String,
}

/// Why archived rows could not be written: the purge stops, and the batch
/// that was not written is rolled back.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the purge archive {}: {source} (retention.archive.directory)", path.display())]
pub struct ArchiveError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl ArchiveFiles {
    /// Checks that `directory` is (or can be made) a directory, before any
    /// row is deleted.
    pub fn open(directory: &Path, per: FilePer) -> Result<ArchiveFiles, ArchiveError> {
        std::fs::create_dir_all(directory).map_err(|source| ArchiveError {
            path: directory.to_path_buf(),
            source,
        })?;
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(['-', ':'], "");
        Ok(ArchiveFiles {
            directory: directory.to_path_buf(),
            per,
            run: format!("purge-{stamp}-{}", std::process::id()),
        })
    }

    /// The file lines go to now.
    pub fn path(&self) -> PathBuf {
        match self.per {
            FilePer::Run => self.directory.join(format!("{}.jsonl", self.run)),
            FilePer::Day => {
                let day = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
                let day = day.get(..10).unwrap_or("unknown-day");
                self.directory.join(format!("purge-{day}.jsonl"))
            }
        }
    }

    /// Appends `lines` (each one JSON object, no newline) and fsyncs the
    /// file (and, when it is new, its directory) before returning.
    pub fn append(&self, lines: &[String]) -> Result<PathBuf, ArchiveError> {
        let path = self.path();
        let fail = |source| ArchiveError {
            path: path.clone(),
            source,
        };
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(fail)?;
        let mut buf = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            buf.push_str(line);
            buf.push('\n');
        }
        file.write_all(buf.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        if !existed {
            File::open(&self.directory)
                .and_then(|d| d.sync_all())
                .map_err(|source| ArchiveError {
                    path: self.directory.clone(),
                    source,
                })?;
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_lines_to_the_run_file_and_refuses_a_file_as_directory() {
        let dir = tempfile::tempdir().unwrap();
        let files = ArchiveFiles::open(&dir.path().join("a/b"), FilePer::Run).unwrap();
        let path = files.append(&["{\"x\":1}".to_string()]).unwrap();
        files.append(&["{\"x\":2}".to_string()]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"x\":1}\n{\"x\":2}\n"
        );
        let day = ArchiveFiles::open(dir.path(), FilePer::Day).unwrap().path();
        let name = day.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(
            name.starts_with("purge-20") && name.ends_with(".jsonl") && name.len() == 22,
            "{name}"
        );
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, "").unwrap();
        let e = ArchiveFiles::open(&not_a_dir, FilePer::Run).unwrap_err();
        assert!(e.to_string().contains("retention.archive.directory"), "{e}");
    }
}
