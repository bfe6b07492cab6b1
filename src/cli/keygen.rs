//! `hardway keygen`: one C2SP det-keygen key from a given seed, for cross-checking other implementations.

use crate::keys::{Algorithm, PrivateKey};

/// Print the C2SP det-keygen key for a seed as PKCS#8 PEM.
///
/// Example: hardway keygen --algorithm ecdsa-p256 --seed-hex 000102030405060708090a0b0c0d0e0f
#[derive(clap::Args)]
pub struct Args {
    /// rsa-2048 | rsa-3072 | rsa-4096 | ecdsa-p256 | ecdsa-p384
    #[arg(long)]
    algorithm: Algorithm,
    /// The det-keygen seed in hex (at least 16 bytes).
    #[arg(long, value_parser = decode_hex)]
    seed_hex: Vec<u8>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let seed = args.seed_hex;
    let key = PrivateKey::generate(args.algorithm, &seed)?;
    print!("{}", key.to_pkcs8_pem());
    Ok(())
}

/// A clap value parser: a bad value is a usage error (exit 2).
fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err("an odd number of hex digits".to_string());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("not hexadecimal near position {i}"))
        })
        .collect()
}
