//! What a simulated device can be: boards and RouterOS versions, with the
//! figures real ones report (memory, storage, CPU, ports, radios).

/// RouterOS major line; the API differs between them in field sets and value
/// formats (dates, health rows, wireless menus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RosMajor {
    /// RouterOS 6 (`6.49.10`).
    V6,
    /// RouterOS 7 (`7.16.2 (stable)`).
    V7,
}

/// A RouterOS release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosVersion {
    /// Major line.
    pub major: RosMajor,
    /// Minor number (`49` in 6.49.10, `18` in 7.18.2).
    pub minor: u32,
    /// Number without channel (`7.18.2`).
    pub number: &'static str,
    /// Release channel shown by v7 (`stable`) and by the package updater.
    pub channel: &'static str,
    /// Build time, as UNIX seconds.
    pub built: u64,
    /// What `/system/package/update` offers.
    pub latest: &'static str,
}

impl RosVersion {
    /// `version` as `/system/resource/print` shows it: v7 appends the channel.
    pub fn display(&self) -> String {
        match self.major {
            RosMajor::V6 => self.number.to_owned(),
            RosMajor::V7 => format!("{} ({})", self.number, self.channel),
        }
    }

    /// 7.18 started answering empty results with `!empty`.
    pub(crate) fn sends_empty(&self) -> bool {
        self.major == RosMajor::V7 && self.minor >= 18
    }

    /// `last-config-change` appeared in `/system/resource` in 7.17.
    pub(crate) fn has_last_config_change(&self) -> bool {
        self.major == RosMajor::V7 && self.minor >= 17
    }

    /// Neighbour rows say how they were found since 7.7.
    pub(crate) fn has_discovered_by(&self) -> bool {
        self.major == RosMajor::V7 && self.minor >= 7
    }
}

pub(crate) const V6: &[RosVersion] = &[RosVersion {
    major: RosMajor::V6,
    minor: 49,
    number: "6.49.10",
    channel: "long-term",
    built: 1_695_714_463,
    latest: "6.49.18",
}];

pub(crate) const V7: &[RosVersion] = &[
    RosVersion {
        major: RosMajor::V7,
        minor: 16,
        number: "7.16.2",
        channel: "stable",
        built: 1_732_612_583,
        latest: "7.18.2",
    },
    RosVersion {
        major: RosMajor::V7,
        minor: 18,
        number: "7.18.2",
        channel: "stable",
        built: 1_741_871_244,
        latest: "7.18.2",
    },
    RosVersion {
        major: RosMajor::V7,
        minor: 12,
        number: "7.12.1",
        channel: "stable",
        built: 1_701_177_530,
        latest: "7.18.2",
    },
];

/// Which radio menu a board has under each major line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Radio {
    None,
    /// 2.4 GHz only.
    Band2,
    /// 5 GHz only.
    Band5,
    /// One radio per band.
    Dual,
}

/// A board model.
#[derive(Debug)]
pub(crate) struct Board {
    /// `board-name` in `/system/resource`.
    pub(crate) name: &'static str,
    /// `model` in `/system/routerboard`.
    pub(crate) model: &'static str,
    pub(crate) arch: &'static str,
    pub(crate) cpu: &'static str,
    pub(crate) cpu_count: u32,
    pub(crate) cpu_mhz: u32,
    pub(crate) total_memory: u64,
    pub(crate) total_hdd: u64,
    pub(crate) ethers: u8,
    pub(crate) sfp: bool,
    pub(crate) radio: Radio,
    /// CHR and x86 have no RouterBOARD menu and no sensors.
    pub(crate) routerboard: bool,
    pub(crate) firmware_type: &'static str,
    /// Identity prefix, so fleet names hint at the role.
    pub(crate) role: &'static str,
    /// Whether `/system/health` has a voltage sensor.
    pub(crate) voltage: bool,
}

pub(crate) const BOARDS: &[Board] = &[
    Board {
        name: "RB4011iGS+5HacQ2HnD",
        model: "RB4011iGS+5HacQ2HnD",
        arch: "arm",
        cpu: "ARMv7",
        cpu_count: 4,
        cpu_mhz: 1400,
        total_memory: 1_073_741_824,
        total_hdd: 536_870_912,
        ethers: 10,
        sfp: true,
        radio: Radio::Band5,
        routerboard: true,
        firmware_type: "al2",
        role: "branch",
        voltage: true,
    },
    Board {
        name: "RB5009UG+S+IN",
        model: "RB5009UG+S+",
        arch: "arm64",
        cpu: "ARM64",
        cpu_count: 4,
        cpu_mhz: 1400,
        total_memory: 1_073_741_824,
        total_hdd: 1_073_741_824,
        ethers: 8,
        sfp: true,
        radio: Radio::None,
        routerboard: true,
        firmware_type: "7040",
        role: "edge",
        voltage: true,
    },
    Board {
        name: "hAP ac^2",
        model: "RBD52G-5HacD2HnD",
        arch: "arm",
        cpu: "ARM",
        cpu_count: 4,
        cpu_mhz: 716,
        total_memory: 134_217_728,
        total_hdd: 16_777_216,
        ethers: 5,
        sfp: false,
        radio: Radio::Dual,
        routerboard: true,
        firmware_type: "ipq4000L",
        role: "ap",
        voltage: true,
    },
    Board {
        name: "RB951Ui-2HnD",
        model: "951Ui-2HnD",
        arch: "mipsbe",
        cpu: "MIPS 24Kc V7.4",
        cpu_count: 1,
        cpu_mhz: 600,
        total_memory: 134_217_728,
        total_hdd: 134_217_728,
        ethers: 5,
        sfp: false,
        radio: Radio::Band2,
        routerboard: true,
        firmware_type: "ar9344",
        role: "cpe",
        voltage: true,
    },
    Board {
        name: "CHR",
        model: "CHR",
        arch: "x86_64",
        cpu: "Intel(R)",
        cpu_count: 2,
        cpu_mhz: 2400,
        total_memory: 1_073_741_824,
        total_hdd: 134_217_728,
        ethers: 2,
        sfp: false,
        radio: Radio::None,
        routerboard: false,
        firmware_type: "",
        role: "core",
        voltage: false,
    },
];

/// MikroTik OUIs seen on real boards.
pub(crate) const OUIS: &[[u8; 3]] = &[
    [0x48, 0x8F, 0x5A],
    [0xDC, 0x2C, 0x6E],
    [0xCC, 0x2D, 0xE0],
    [0x74, 0x4D, 0x28],
    [0xB8, 0x69, 0xF4],
];
