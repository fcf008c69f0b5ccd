"""The read side: pure folds from events to facts, and stored read models built from them."""
