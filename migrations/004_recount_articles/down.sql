-- The recount created nothing: a right count is the same before and
-- after it, so there is nothing to undo.
SELECT 1;
