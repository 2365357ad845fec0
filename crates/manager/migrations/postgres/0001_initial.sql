-- The manager's state: identity, sector numbers, sectors, the message outbox, store
-- reservations and workers. Times are Unix seconds; byte strings are BYTEAs.

CREATE TABLE manager_identity (
    singleton BIGINT PRIMARY KEY CHECK (singleton = 1),
    instance_id TEXT NOT NULL,
    token_secret BYTEA NOT NULL
);

CREATE TABLE sector_numbers (
    miner BIGINT PRIMARY KEY,
    last_allocated BIGINT NOT NULL
);

CREATE TABLE sectors (
    miner BIGINT NOT NULL,
    number BIGINT NOT NULL,
    proof_type BIGINT NOT NULL,
    phase TEXT NOT NULL,
    abort_reason TEXT,
    pieces TEXT,
    ticket BYTEA,
    ticket_epoch BIGINT,
    pre_comm_r BYTEA,
    pre_comm_d BYTEA,
    pre_ticket BYTEA,
    pre_ticket_epoch BIGINT,
    pre_submitted_at BIGINT,
    pre_need_send BIGINT NOT NULL DEFAULT 0,
    pre_message BIGINT,
    seed BYTEA,
    seed_epoch BIGINT,
    proof BYTEA,
    proof_submitted_at BIGINT,
    proof_need_send BIGINT NOT NULL DEFAULT 0,
    proof_message BIGINT,
    persisted_instance TEXT,
    latest_state TEXT,
    worker_instance TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (miner, number)
);
CREATE INDEX sectors_by_phase ON sectors (phase, miner, number);

CREATE TABLE sector_events (
    id BIGSERIAL PRIMARY KEY,
    miner BIGINT NOT NULL,
    number BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX sector_events_by_sector ON sector_events (miner, number, id);

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    miner BIGINT NOT NULL,
    purpose TEXT NOT NULL,
    msg_uuid TEXT NOT NULL UNIQUE,
    from_address TEXT NOT NULL,
    method BIGINT NOT NULL,
    params BYTEA NOT NULL,
    value TEXT NOT NULL,
    max_fee TEXT NOT NULL,
    state TEXT NOT NULL,
    signed_cid TEXT,
    signed_message TEXT,
    push_attempts BIGINT NOT NULL DEFAULT 0,
    nonce_passed_height BIGINT,
    last_error TEXT,
    executed_height BIGINT,
    executed_tipset TEXT,
    exit_code BIGINT,
    receipt TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX messages_by_state ON messages (state, id);

CREATE TABLE message_sectors (
    message_id BIGINT NOT NULL,
    miner BIGINT NOT NULL,
    number BIGINT NOT NULL,
    PRIMARY KEY (message_id, miner, number)
);
CREATE INDEX message_sectors_by_sector ON message_sectors (miner, number);

CREATE TABLE reservations (
    miner BIGINT NOT NULL,
    number BIGINT NOT NULL,
    store TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    reserved_by TEXT NOT NULL,
    reserved_at BIGINT NOT NULL,
    PRIMARY KEY (miner, number)
);

CREATE TABLE workers (
    name TEXT PRIMARY KEY,
    dest TEXT NOT NULL,
    version TEXT NOT NULL,
    summary TEXT NOT NULL,
    last_ping BIGINT NOT NULL
);
