/* Names of message types, for logs and traces. */
#include "msg.h"

const char *opx_msg_type_name(enum opx_msg_type type)
{
	static const char *const names[] = {
		[OPX_MSG_HB_REQUEST] = "HeartbeatRequest",
		[OPX_MSG_HB_REPLY] = "HeartbeatReply",
		[OPX_MSG_PREPARE_REQ] = "PrepareReq",
		[OPX_MSG_PREPARE] = "Prepare",
		[OPX_MSG_PROMISE] = "Promise",
		[OPX_MSG_ACCEPT_SYNC] = "AcceptSync",
		[OPX_MSG_ACCEPT_DECIDE] = "AcceptDecide",
		[OPX_MSG_ACCEPTED] = "Accepted",
		[OPX_MSG_DECIDE] = "Decide",
		[OPX_MSG_NOT_ACCEPTED] = "NotAccepted",
		[OPX_MSG_PROPOSAL_FORWARD] = "ProposalForward",
		[OPX_MSG_COMPACTION] = "Compaction",
		[OPX_MSG_ACCEPT_STOPSIGN] = "AcceptStopSign",
		[OPX_MSG_FORWARD_STOPSIGN] = "ForwardStopSign",
	};
	if ((unsigned)type >= sizeof(names) / sizeof(names[0]) || !names[type])
		return "?";
	return names[type];
}
