"""The patient's inbox: what happened about them across the consortium, with what they have not seen yet."""
