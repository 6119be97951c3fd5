//! The values of (0000,0100) CommandField (PS3.7 E.1) and (0000,0700) Priority.

use std::fmt;

/// The value of (0000,0100) CommandField (PS3.7 E.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandField {
    /// C-STORE-RQ, 0x0001.
    CStoreRq,
    /// C-STORE-RSP, 0x8001.
    CStoreRsp,
    /// C-GET-RQ, 0x0010.
    CGetRq,
    /// C-GET-RSP, 0x8010.
    CGetRsp,
    /// C-FIND-RQ, 0x0020.
    CFindRq,
    /// C-FIND-RSP, 0x8020.
    CFindRsp,
    /// C-MOVE-RQ, 0x0021.
    CMoveRq,
    /// C-MOVE-RSP, 0x8021.
    CMoveRsp,
    /// C-ECHO-RQ, 0x0030.
    CEchoRq,
    /// C-ECHO-RSP, 0x8030.
    CEchoRsp,
    /// N-EVENT-REPORT-RQ, 0x0100.
    NEventReportRq,
    /// N-EVENT-REPORT-RSP, 0x8100.
    NEventReportRsp,
    /// N-GET-RQ, 0x0110.
    NGetRq,
    /// N-GET-RSP, 0x8110.
    NGetRsp,
    /// N-SET-RQ, 0x0120.
    NSetRq,
    /// N-SET-RSP, 0x8120.
    NSetRsp,
    /// N-ACTION-RQ, 0x0130.
    NActionRq,
    /// N-ACTION-RSP, 0x8130.
    NActionRsp,
    /// N-CREATE-RQ, 0x0140.
    NCreateRq,
    /// N-CREATE-RSP, 0x8140.
    NCreateRsp,
    /// N-DELETE-RQ, 0x0150.
    NDeleteRq,
    /// N-DELETE-RSP, 0x8150.
    NDeleteRsp,
    /// C-CANCEL-RQ, 0x0FFF.
    CCancelRq,
    /// A value PS3.7 does not define.
    Other(u16),
}

/// The defined command fields, their values and names.
const COMMAND_FIELDS: &[(CommandField, u16, &str)] = &[
    (CommandField::CStoreRq, 0x0001, "C-STORE-RQ"),
    (CommandField::CStoreRsp, 0x8001, "C-STORE-RSP"),
    (CommandField::CGetRq, 0x0010, "C-GET-RQ"),
    (CommandField::CGetRsp, 0x8010, "C-GET-RSP"),
    (CommandField::CFindRq, 0x0020, "C-FIND-RQ"),
    (CommandField::CFindRsp, 0x8020, "C-FIND-RSP"),
    (CommandField::CMoveRq, 0x0021, "C-MOVE-RQ"),
    (CommandField::CMoveRsp, 0x8021, "C-MOVE-RSP"),
    (CommandField::CEchoRq, 0x0030, "C-ECHO-RQ"),
    (CommandField::CEchoRsp, 0x8030, "C-ECHO-RSP"),
    (CommandField::NEventReportRq, 0x0100, "N-EVENT-REPORT-RQ"),
    (CommandField::NEventReportRsp, 0x8100, "N-EVENT-REPORT-RSP"),
    (CommandField::NGetRq, 0x0110, "N-GET-RQ"),
    (CommandField::NGetRsp, 0x8110, "N-GET-RSP"),
    (CommandField::NSetRq, 0x0120, "N-SET-RQ"),
    (CommandField::NSetRsp, 0x8120, "N-SET-RSP"),
    (CommandField::NActionRq, 0x0130, "N-ACTION-RQ"),
    (CommandField::NActionRsp, 0x8130, "N-ACTION-RSP"),
    (CommandField::NCreateRq, 0x0140, "N-CREATE-RQ"),
    (CommandField::NCreateRsp, 0x8140, "N-CREATE-RSP"),
    (CommandField::NDeleteRq, 0x0150, "N-DELETE-RQ"),
    (CommandField::NDeleteRsp, 0x8150, "N-DELETE-RSP"),
    (CommandField::CCancelRq, 0x0FFF, "C-CANCEL-RQ"),
];

impl CommandField {
    /// The command field of a value; undefined values give [`CommandField::Other`].
    pub fn from_u16(v: u16) -> Self {
        COMMAND_FIELDS.iter().find(|c| c.1 == v).map_or(CommandField::Other(v), |c| c.0)
    }

    /// The value.
    pub fn to_u16(self) -> u16 {
        match self {
            CommandField::Other(v) => v,
            f => COMMAND_FIELDS.iter().find(|c| c.0 == f).map_or(0, |c| c.1),
        }
    }

    /// The name, e.g. `"C-STORE-RQ"`; `"unknown"` for an undefined value.
    pub fn name(self) -> &'static str {
        let v = self.to_u16();
        COMMAND_FIELDS.iter().find(|c| c.1 == v).map_or("unknown", |c| c.2)
    }

    /// Whether this is a response (bit 15 set).
    pub fn is_response(self) -> bool {
        self.to_u16() & 0x8000 != 0
    }
}

impl From<u16> for CommandField {
    fn from(v: u16) -> Self {
        CommandField::from_u16(v)
    }
}

impl fmt::Display for CommandField {
    /// The name, or `command field 0xNNNN` for an undefined value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "unknown" => write!(f, "command field 0x{:04X}", self.to_u16()),
            n => f.write_str(n),
        }
    }
}

/// The value of (0000,0700) Priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// 0x0000.
    #[default]
    Medium = 0,
    /// 0x0001.
    High = 1,
    /// 0x0002.
    Low = 2,
}

impl Priority {
    /// The priority of a value; `None` for a value PS3.7 does not define.
    pub fn from_u16(v: u16) -> Option<Self> {
        match v {
            0 => Some(Priority::Medium),
            1 => Some(Priority::High),
            2 => Some(Priority::Low),
            _ => None,
        }
    }

    /// The value.
    pub fn to_u16(self) -> u16 {
        self as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_fields() {
        assert_eq!(CommandField::from_u16(0x0001), CommandField::CStoreRq);
        assert_eq!(CommandField::from_u16(0x8021), CommandField::CMoveRsp);
        assert_eq!(CommandField::from_u16(0x0FFF), CommandField::CCancelRq);
        assert_eq!(CommandField::from_u16(0x0FFF).name(), "C-CANCEL-RQ");
        assert_eq!(CommandField::from_u16(0x1234), CommandField::Other(0x1234));
        assert_eq!(CommandField::Other(0x1234).name(), "unknown");
        assert_eq!(CommandField::Other(0x1234).to_string(), "command field 0x1234");
        assert_eq!(CommandField::NActionRsp.to_string(), "N-ACTION-RSP");
        for &(f, v, n) in COMMAND_FIELDS {
            assert_eq!(CommandField::from_u16(v), f);
            assert_eq!(f.to_u16(), v);
            assert_eq!(f.name(), n);
            assert_eq!(f.is_response(), n.ends_with("-RSP"));
        }
        assert_eq!(Priority::from_u16(2), Some(Priority::Low));
        assert_eq!(Priority::from_u16(3), None);
        assert_eq!(Priority::High.to_u16(), 1);
    }
}
