-- +goose Up
-- References made from now on are 40 random bits (RB-XXXX-XXXX) and
-- unique. Older ones (RB- and eight hex digits, a 32-bit hash of the
-- message id) may already collide, so they keep the plain index and a
-- lookup that finds two of them refuses.
CREATE UNIQUE INDEX requests_ref_unique ON requests (ref) WHERE ref LIKE 'RB-____-____';

-- +goose Down
DROP INDEX requests_ref_unique;
