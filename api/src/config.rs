//! Start-up configuration shared by the commands: where the database is and
//! where the server's master key lives.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use engine::Database;
use engine::store::Keys;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Store(#[from] engine::StoreError),
    #[error("PUHUI_MASTER_KEY must be at least 64 hexadecimal characters (32 bytes)")]
    BadMasterKey,
    #[error("master key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("master key file {0} is shorter than 32 bytes")]
    ShortKeyFile(PathBuf),
}

/// Options every command that touches the database takes.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database to use: `sqlite://path`, a bare file path, or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = engine::db::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// File holding the server's master key (created on first use). The key
    /// signs the audit chain and keys the resident-ID hashes: keep it safe
    /// and backed up with the database. `PUHUI_MASTER_KEY` (hex) overrides it.
    #[arg(long, env = "PUHUI_KEY_FILE", default_value = "data/master.key")]
    pub key_file: PathBuf,
}

/// Connections a one-shot command keeps: it works on one at a time.
const ONE_SHOT_POOL_SIZE: u32 = 2;

impl DatabaseArgs {
    /// Opens the database for a one-shot command.
    pub fn open(&self) -> Result<(Database, Keys), ConfigError> {
        self.open_pool(ONE_SHOT_POOL_SIZE)
    }

    /// Opens the database with a pool of `pool_size` connections (the server).
    pub fn open_pool(&self, pool_size: u32) -> Result<(Database, Keys), ConfigError> {
        let keys = Keys::derive(&master_key(&self.key_file)?);
        let db = Database::open(&self.database_url, pool_size)?;
        Ok((db, keys))
    }
}

fn master_key(path: &Path) -> Result<Vec<u8>, ConfigError> {
    if let Ok(hex_key) = std::env::var("PUHUI_MASTER_KEY") {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| ConfigError::BadMasterKey)?;
        if bytes.len() < 32 {
            return Err(ConfigError::BadMasterKey);
        }
        return Ok(bytes);
    }
    let io = |source| ConfigError::KeyFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= 32 => Ok(bytes),
        Ok(_) => Err(ConfigError::ShortKeyFile(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let key = random_bytes::<32>();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(path).map_err(io)?;
            file.write_all(&key).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key.to_vec())
        }
        Err(e) => Err(io(e)),
    }
}

/// Bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::TryRngCore;
    let mut bytes = [0_u8; N];
    // Without a working OS random source no key or token can be issued
    // safely; stopping is the only correct response.
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .unwrap_or_else(|e| panic!("operating system random source failed: {e}"));
    bytes
}
