CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	PRIMARY KEY (version)
);
CREATE TABLE responses (
	seq INTEGER NOT NULL, 
	id VARCHAR NOT NULL, 
	created_at FLOAT NOT NULL, 
	model VARCHAR, 
	status VARCHAR, 
	previous_response_id VARCHAR, 
	conversation_id VARCHAR, 
	response JSON NOT NULL, 
	input_items JSON NOT NULL, 
	context_items JSON NOT NULL, 
	PRIMARY KEY (seq), 
	UNIQUE (id)
);
CREATE INDEX ix_responses_created_seq ON responses (created_at, seq);
CREATE INDEX ix_responses_model_created_seq ON responses (model, created_at, seq);
CREATE INDEX ix_responses_previous ON responses (previous_response_id);
CREATE INDEX ix_responses_conversation ON responses (conversation_id);
INSERT INTO schema_version (version) VALUES (1);
