-- Nothing to undo: 007's down drops the column.
SELECT 1;
