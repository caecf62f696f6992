//! Facts about this host for enrollment (each overridable on the command line).

use edrlink_core::redeem::DeviceFacts;
use std::path::Path;

/// Overrides given on the command line.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct DeviceArgs {
    /// Stable device id (default: /etc/machine-id, else an id kept in the data directory).
    #[arg(long)]
    pub device_id: Option<String>,
    /// Host name (default: this host's name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// OS family: windows, macos, linux, android, ios, chromeos (default: this OS).
    #[arg(long)]
    pub os: Option<String>,
    /// OS version (default: from /etc/os-release or the kernel).
    #[arg(long)]
    pub os_version: Option<String>,
    /// Partner product name.
    #[arg(long, default_value = "edrlink-cli")]
    pub product: String,
    /// Partner product version.
    #[arg(long, default_value = edrlink_core::VERSION)]
    pub product_version: String,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// This host's name.
pub fn hostname() -> String {
    read_trim("/proc/sys/kernel/hostname")
        .or_else(|| read_trim("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown-host".into())
}

/// The OS family in the protocol's vocabulary.
pub fn os_family() -> String {
    match std::env::consts::OS {
        "macos" => "macos",
        "windows" => "windows",
        "android" => "android",
        "ios" => "ios",
        _ => "linux",
    }
    .into()
}

/// The OS version, best effort.
pub fn os_version() -> String {
    if let Some(text) = read_trim("/etc/os-release") {
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim_matches('"').to_owned())
        };
        if let Some(v) = field("PRETTY_NAME=").or_else(|| field("VERSION_ID=")) {
            return v;
        }
    }
    read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
}

/// The machine id, or one generated once and kept in `data_dir/device-id`.
pub fn device_id(data_dir: &Path) -> String {
    if let Some(id) = read_trim("/etc/machine-id").or_else(|| read_trim("/var/lib/dbus/machine-id"))
    {
        return id;
    }
    let path = data_dir.join("device-id");
    if let Some(id) = read_trim(&path.to_string_lossy()) {
        return id;
    }
    let id = edrlink_core::keys::random_id(&edrlink_core::keys::SystemRandom, 16)
        .unwrap_or_else(|_| hostname());
    let _ = std::fs::create_dir_all(data_dir);
    let _ = std::fs::write(&path, &id);
    id
}

impl DeviceArgs {
    /// The device facts: overrides first, then the host.
    pub fn facts(&self, data_dir: &Path) -> DeviceFacts {
        DeviceFacts {
            device_id: self
                .device_id
                .clone()
                .unwrap_or_else(|| device_id(data_dir)),
            hostname: self.hostname.clone().unwrap_or_else(hostname),
            os: self.os.clone().unwrap_or_else(os_family),
            os_version: self.os_version.clone().unwrap_or_else(os_version),
            product: if self.product.is_empty() {
                "edrlink-cli".into()
            } else {
                self.product.clone()
            },
            product_version: if self.product_version.is_empty() {
                edrlink_core::VERSION.into()
            } else {
                self.product_version.clone()
            },
        }
    }
}
