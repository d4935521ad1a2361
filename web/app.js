// natter page script
