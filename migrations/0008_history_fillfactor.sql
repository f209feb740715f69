-- 0008: room on each page of the state history for closing a version.
-- Every batch sets valid_to on the open row of each stream it touches;
-- on a full page that update is not HOT: a new row version on another
-- page and a new entry in every index, for every stream and batch, until
-- vacuum. With pages 70% full at insert the closed version stays on its
-- page (HOT: no index entry), which in live batches of a few events per
-- stream is a quarter less work for the close (issue 10). Pages written
-- before this migration keep their fill.
ALTER TABLE evs.state_history SET (fillfactor = 70);
