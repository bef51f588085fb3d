print("hello from a Brig sandbox")
