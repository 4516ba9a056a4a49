@tool
extends RefCounted
## The starts a WorldBridgeClient asked for and sent, and what each asked for.
##
## A start the host never answers goes again, as sent, at the next welcome; a session takes its
## own start's options, which a failed resume starts again; a start refused for a prompt taken
## from the exports goes again without it. The client decides; this remembers.

## The options of the newest start_session() call (exports not merged): a queued start uses them.
var options := {}
## A start waits for the next welcome: asked for while no host could take it, or sent and never
## answered.
var pending := false
## What a start that was sent and never answered (or answered not_ready) asked for (exports and
## options merged): the next welcome sends exactly this again, with no new prompt_viewport
## capture; empty otherwise.
var resend := {}
## The req_id of the newest start sent: one that did not go out is no start to wait for.
var newest := -1
## What each start sent on this connection asked for (exports and options merged), by req_id,
## until the host answers it: a session takes its start's options and action_map, and a
## reconnect sends the start `newest` again if it is here (instead of a resume).
var sent := {}
## The options the current session was started with: a failed resume starts them again.
var session_options := {}
## Prompt kinds the newest start sent took from the exports (not from start_session's options): a
## backend that refuses one gets the start again without it, so an auto start gets a world.
var exported := PackedStringArray()
## Prompt kinds left out of the newest start sent because its backend refused them.
var dropped := PackedStringArray()
## `exported` of the start the current session answers: a failed resume starts that session
## again, and a restarted host's backend may refuse one of them as well.
var session_prompts := PackedStringArray()


## start_session() with no host to take it: its `start_options` go at the next welcome, in
## place of a start that was sent and never answered.
func queue(start_options: Dictionary) -> void:
	options = start_options
	pending = true
	resend = {}


## No start waits for the next welcome: the game disconnected, or its newest start was refused.
func forget_queued() -> void:
	pending = false
	resend = {}


## A start went out as request `req` asking for `opts`: nothing waits for a welcome any more.
func went_out(req: int, opts: Dictionary) -> void:
	pending = false
	resend = {}
	newest = req
	sent[req] = opts


## Whether `header` answers the newest start sent.
func answers_newest(header: Dictionary) -> bool:
	var req: Variant = header.get("req_id")
	return typeof(req) == TYPE_INT and req == newest


## A `session` or `error` answering a start settles it. Returns what that start sent (empty if it
## answers no start): a new session takes it, and a start is repeated as sent.
func answered(header: Dictionary) -> Dictionary:
	var req: Variant = header.get("req_id")
	if typeof(req) != TYPE_INT:
		return {}
	var opts: Dictionary = sent.get(req, {})
	sent.erase(req)
	return opts


## A sent start the host will never answer goes again at the next welcome exactly as sent
## (no new prompt_viewport capture), unless the game asked for another start since.
func resend_at_welcome(opts: Dictionary) -> void:
	if not pending:
		pending = true
		resend = opts


## The connection dropped: no start sent on it will be answered, and the newest goes again.
func connection_lost() -> void:
	if sent.has(newest):
		resend_at_welcome(sent[newest])
	sent.clear()
