//! Writing a file outside the store all at once: a temporary file in the same directory, an explicit mode
//! (whatever the umask), then a rename. Killed at any moment, the destination holds the old bytes or the new.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to `dest` with `mode`. `replace`: an existing file is replaced; otherwise an existing one is
/// an error (`AlreadyExists`) and stays as it is. The temporary file is removed on any failure.
pub fn write_file(dest: &Path, bytes: &[u8], mode: u32, replace: bool) -> std::io::Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    if replace {
        tmp.persist(dest).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(dest).map_err(|e| e.error)?;
    }
    Ok(())
}
