//! Element numbers of the command elements of PS3.7 Annex E (group 0000).

/// (0000,0000) CommandGroupLength, UL.
pub const COMMAND_GROUP_LENGTH: u16 = 0x0000;
/// (0000,0002) AffectedSOPClassUID, UI.
pub const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
/// (0000,0003) RequestedSOPClassUID, UI.
pub const REQUESTED_SOP_CLASS_UID: u16 = 0x0003;
/// (0000,0100) CommandField, US.
pub const COMMAND_FIELD: u16 = 0x0100;
/// (0000,0110) MessageID, US.
pub const MESSAGE_ID: u16 = 0x0110;
/// (0000,0120) MessageIDBeingRespondedTo, US.
pub const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
/// (0000,0600) MoveDestination, AE.
pub const MOVE_DESTINATION: u16 = 0x0600;
/// (0000,0700) Priority, US.
pub const PRIORITY: u16 = 0x0700;
/// (0000,0800) CommandDataSetType, US.
pub const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
/// (0000,0900) Status, US.
pub const STATUS: u16 = 0x0900;
/// (0000,0901) OffendingElement, AT.
pub const OFFENDING_ELEMENT: u16 = 0x0901;
/// (0000,0902) ErrorComment, LO.
pub const ERROR_COMMENT: u16 = 0x0902;
/// (0000,0903) ErrorID, US.
pub const ERROR_ID: u16 = 0x0903;
/// (0000,1000) AffectedSOPInstanceUID, UI.
pub const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;
/// (0000,1001) RequestedSOPInstanceUID, UI.
pub const REQUESTED_SOP_INSTANCE_UID: u16 = 0x1001;
/// (0000,1002) EventTypeID, US.
pub const EVENT_TYPE_ID: u16 = 0x1002;
/// (0000,1005) AttributeIdentifierList, AT.
pub const ATTRIBUTE_IDENTIFIER_LIST: u16 = 0x1005;
/// (0000,1008) ActionTypeID, US.
pub const ACTION_TYPE_ID: u16 = 0x1008;
/// (0000,1020) NumberOfRemainingSuboperations, US.
pub const NUMBER_OF_REMAINING_SUBOPERATIONS: u16 = 0x1020;
/// (0000,1021) NumberOfCompletedSuboperations, US.
pub const NUMBER_OF_COMPLETED_SUBOPERATIONS: u16 = 0x1021;
/// (0000,1022) NumberOfFailedSuboperations, US.
pub const NUMBER_OF_FAILED_SUBOPERATIONS: u16 = 0x1022;
/// (0000,1023) NumberOfWarningSuboperations, US.
pub const NUMBER_OF_WARNING_SUBOPERATIONS: u16 = 0x1023;
/// (0000,1030) MoveOriginatorApplicationEntityTitle, AE.
pub const MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE: u16 = 0x1030;
/// (0000,1031) MoveOriginatorMessageID, US.
pub const MOVE_ORIGINATOR_MESSAGE_ID: u16 = 0x1031;
